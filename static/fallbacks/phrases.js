"use strict";
// "Try this phrase" (fallbacks/admin.py, ChatPreviewButton): sends the phrase as typed, saved
// or not, to the admin's preview view and shows the reply chat would get under the phrase's
// box. Every text shown comes from the server, translated; this script only moves it.
(function () {
  function phraseBox(button) {
    // A row of the intent page's phrases, or the phrase's own page.
    const scope = button.closest("tr") || button.closest("form");
    return scope ? scope.querySelector('textarea[name$="text"]') : null;
  }

  function csrfToken(button) {
    const form = button.closest("form");
    const field = form ? form.querySelector('input[name="csrfmiddlewaretoken"]') : null;
    return field ? field.value : "";
  }

  function outputFor(box) {
    // Under the phrase's box, where there is room for a 500-character reply.
    let output = box.parentElement.querySelector(".phrase-preview");
    if (!output) {
      output = document.createElement("output");
      output.className = "phrase-preview";
      output.setAttribute("aria-live", "polite");
      output.setAttribute("for", box.id);
      box.insertAdjacentElement("afterend", output);
    }
    return output;
  }

  async function showPreview(button) {
    const box = phraseBox(button);
    if (!box) {
      return;
    }
    const output = outputFor(box);
    const body = new FormData();
    body.append("text", box.value);
    button.disabled = true;
    try {
      const response = await fetch(button.dataset.url, {
        method: "POST",
        body: body,
        headers: {"X-CSRFToken": csrfToken(button)},
        credentials: "same-origin",
      });
      // An expired session answers with a redirect to the admin's login page, which fetch
      // follows: its 200 is a whole page, not a preview.
      if (!response.ok || response.redirected) {
        throw new Error(String(response.status));
      }
      output.innerHTML = await response.text();  // the server escaped the phrase
    } catch (error) {
      output.textContent = button.dataset.error;
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest(".phrase-preview-button");
    if (button) {
      event.preventDefault();
      showPreview(button);
    }
  });
})();
