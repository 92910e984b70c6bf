from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.messages import constants
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from fallbacks import preview, services
from fallbacks.models import Intent, Phrase

pytestmark = pytest.mark.django_db

CaptureCommits = Callable[..., Any]
TOO_LONG = "A phrase can have at most 500 characters, Twitch refuses longer chat messages (this one has 501)."


@pytest.fixture(autouse=True)
def warm_cache() -> Iterator[None]:
    # Warm, as in the running bot: a stale cache would keep serving the old phrases.
    services.invalidate()
    services.warm()
    yield
    services.invalidate()


def replies(intent: str, times: int = 30) -> set[str]:
    return {services.get_fallback_response(intent) for _ in range(times)}


def texts(slug: str) -> set[str]:
    return set(Phrase.objects.filter(intent__slug=slug).values_list("text", flat=True))


Row = tuple[int | None, str, bool] | tuple[int | None, str, bool, str]


def intent_form(intent: Intent, rows: list[Row], **fields: str) -> dict[str, str]:
    """The admin change form for an intent, with its phrases inline: (id or None, text, enabled[, language]).

    `fields` overrides the intent's own fields as posted ("" for an unchecked box).
    """
    data = {
        "slug": intent.slug,
        "description": intent.description,
        "enabled": "on" if intent.enabled else "",
        "command": "on" if intent.command else "",
        "aliases": intent.aliases,
        "permission": intent.permission,
        "user_cooldown": "" if intent.user_cooldown is None else str(intent.user_cooldown),
        "channel_cooldown": "" if intent.channel_cooldown is None else str(intent.channel_cooldown),
        "ask_model": "on" if intent.ask_model else "",
        "prompt": intent.prompt,
        "phrases-TOTAL_FORMS": str(len(rows)),
        "phrases-INITIAL_FORMS": str(sum(1 for row in rows if row[0] is not None)),
        "phrases-MIN_NUM_FORMS": "0",
        "phrases-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    data.update(fields)
    for i, row in enumerate(rows):
        pk, text, enabled = row[:3]
        data[f"phrases-{i}-id"] = str(pk or "")
        data[f"phrases-{i}-intent"] = str(intent.pk)
        data[f"phrases-{i}-text"] = text
        data[f"phrases-{i}-language"] = row[3] if len(row) == 4 else ""
        if enabled:
            data[f"phrases-{i}-enabled"] = "on"
    # An unchecked box is absent from a real browser's post.
    return {key: value for key, value in data.items() if value != "" or key not in CHECKBOXES}


CHECKBOXES = {"enabled", "command", "ask_model"}


def current_rows(intent: Intent) -> list[Row]:
    return [
        (phrase.pk, phrase.text, phrase.enabled, phrase.language) for phrase in intent.phrases.order_by("id")
    ]


def warnings_of(response: Any) -> list[str]:
    return [message for level, message in messages_of(response) if level == constants.WARNING]


def messages_of(response: Any) -> list[tuple[int, str]]:
    return [(message.level, message.message) for message in response.context["messages"]]


def test_the_intent_list_shows_phrase_counts(admin_client: Client) -> None:
    Phrase.objects.filter(intent__slug="chill").order_by("id")[:1].get().delete()
    first = Phrase.objects.filter(intent__slug="chill").order_by("id").first()
    assert first is not None
    first.enabled = False
    first.save()
    response = admin_client.get(reverse("admin:fallbacks_intent_changelist"))
    assert response.status_code == 200
    total = Phrase.objects.filter(intent__slug="chill").count()
    row = next(r for r in response.context["cl"].result_list if r.slug == "chill")
    assert (row.phrase_total, row.phrase_enabled) == (total, total - 1)
    html = response.content.decode()
    assert f'<td class="field-phrase_count">{total}</td>' in html
    assert f'<td class="field-enabled_phrase_count">{total - 1}</td>' in html


def test_the_intent_list_searches_phrase_text(admin_client: Client) -> None:
    phrase = Phrase.objects.filter(intent__slug="ask_timeout").first()
    assert phrase is not None
    response = admin_client.get(reverse("admin:fallbacks_intent_changelist"), {"q": phrase.text[:25]})
    assert [intent.slug for intent in response.context["cl"].result_list] == ["ask_timeout"]
    assert response.context["cl"].result_list[0].phrase_total == len(texts("ask_timeout"))


def test_the_phrase_list_shows_lengths_and_filters_by_intent(admin_client: Client) -> None:
    intent = Intent.objects.get(slug="ask_error")
    response = admin_client.get(
        reverse("admin:fallbacks_phrase_changelist"), {"intent__id__exact": intent.pk}
    )
    assert response.status_code == 200
    listed = response.context["cl"].result_list
    assert {phrase.text for phrase in listed} == texts("ask_error")
    html = response.content.decode()
    for phrase in listed:
        assert f'<td class="field-length">{len(phrase.text)}</td>' in html


def test_the_intent_page_shows_its_phrases_inline(admin_client: Client) -> None:
    intent = Intent.objects.get(slug="ask")
    response = admin_client.get(reverse("admin:fallbacks_intent_change", args=[intent.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="phrases-TOTAL_FORMS"' in html
    for text in texts("ask"):
        assert text.replace("'", "&#x27;") in html


def test_an_inline_edit_is_served_at_once(
    admin_client: Client, django_capture_on_commit_callbacks: CaptureCommits
) -> None:
    intent = Intent.objects.get(slug="ask")
    assert replies("ask") <= texts("ask")
    rows = current_rows(intent)
    first_pk = rows[0][0]
    assert first_pk is not None
    edited: list[Row] = [
        (first_pk, "Réplique toute neuve 🧪", True),
        *[(row[0], row[1], False) for row in rows[1:]],
    ]
    url = reverse("admin:fallbacks_intent_change", args=[intent.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, intent_form(intent, edited))
    assert response.status_code == 302
    assert Phrase.objects.get(pk=first_pk).text == "Réplique toute neuve 🧪"
    assert replies("ask") == {"Réplique toute neuve 🧪"}


def test_an_inline_phrase_can_be_added(
    admin_client: Client, django_capture_on_commit_callbacks: CaptureCommits
) -> None:
    intent = Intent.objects.get(slug="ask_error")
    rows = [*current_rows(intent), (None, "Encore une panne, décidément 🔧", True)]
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:fallbacks_intent_change", args=[intent.pk]), intent_form(intent, rows), follow=True
        )
    assert not [message for level, message in messages_of(response) if level == constants.WARNING]
    assert "Encore une panne, décidément 🔧" in texts("ask_error")
    assert "Encore une panne, décidément 🔧" in replies("ask_error", times=200)


def test_an_inline_phrase_over_500_characters_is_refused(admin_client: Client) -> None:
    intent = Intent.objects.get(slug="ask")
    before = texts("ask")
    rows = current_rows(intent)
    rows[0] = (rows[0][0], "x" * 501, True)
    response = admin_client.post(
        reverse("admin:fallbacks_intent_change", args=[intent.pk]), intent_form(intent, rows)
    )
    assert response.status_code == 200
    assert TOO_LONG in response.content.decode()
    assert texts("ask") == before


def test_a_long_inline_phrase_is_saved_with_a_warning(admin_client: Client) -> None:
    intent = Intent.objects.get(slug="chill")
    long_text = "Je parle beaucoup trop pour un bot 🤖 " + "bla " * 60
    long_text = long_text[:250]
    rows = [*current_rows(intent), (None, long_text, True)]
    response = admin_client.post(
        reverse("admin:fallbacks_intent_change", args=[intent.pk]), intent_form(intent, rows), follow=True
    )
    assert long_text in texts("chill")
    warnings = [message for level, message in messages_of(response) if level == constants.WARNING]
    assert len(warnings) == 1
    assert "250 characters" in warnings[0]


def test_a_phrase_over_500_characters_is_refused_by_the_phrase_form(admin_client: Client) -> None:
    intent = Intent.objects.get(slug="ask")
    response = admin_client.post(
        reverse("admin:fallbacks_phrase_add"), {"intent": intent.pk, "text": "y" * 501, "enabled": "on"}
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"text": [TOO_LONG]}
    assert not Phrase.objects.filter(text="y" * 501).exists()


def test_a_phrase_over_200_characters_is_saved_with_a_warning(admin_client: Client) -> None:
    intent = Intent.objects.get(slug="ask")
    text = "z" * 250
    response = admin_client.post(
        reverse("admin:fallbacks_phrase_add"),
        {"intent": intent.pk, "text": text, "enabled": "on"},
        follow=True,
    )
    assert Phrase.objects.filter(intent=intent, text=text).exists()
    warnings = [message for level, message in messages_of(response) if level == constants.WARNING]
    assert len(warnings) == 1
    assert "250 characters" in warnings[0]
    assert "ask" in warnings[0]


def test_a_short_phrase_is_saved_without_warning(admin_client: Client) -> None:
    intent = Intent.objects.get(slug="ask")
    response = admin_client.post(
        reverse("admin:fallbacks_phrase_add"),
        {"intent": intent.pk, "text": "Court et efficace ⚡", "enabled": "on"},
        follow=True,
    )
    assert Phrase.objects.filter(intent=intent, text="Court et efficace ⚡").exists()
    assert not [message for level, message in messages_of(response) if level == constants.WARNING]


def test_disabling_intents_in_bulk_is_served_at_once(
    admin_client: Client, django_capture_on_commit_callbacks: CaptureCommits
) -> None:
    intent = Intent.objects.get(slug="ask_timeout")
    assert replies("ask_timeout") <= texts("ask_timeout")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:fallbacks_intent_changelist"),
            {"action": "disable", "_selected_action": [str(intent.pk)]},
        )
    assert response.status_code == 302
    assert not Intent.objects.get(pk=intent.pk).enabled
    assert replies("ask_timeout") <= texts("chill")

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("admin:fallbacks_intent_changelist"),
            {"action": "enable", "_selected_action": [str(intent.pk)]},
        )
    assert replies("ask_timeout") <= texts("ask_timeout")


def test_disabling_phrases_in_bulk_is_served_at_once(
    admin_client: Client, django_capture_on_commit_callbacks: CaptureCommits
) -> None:
    kept, *others = Phrase.objects.filter(intent__slug="chill").order_by("id")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:fallbacks_phrase_changelist"),
            {"action": "disable", "_selected_action": [str(phrase.pk) for phrase in others]},
        )
    assert response.status_code == 302
    assert replies("chill") == {kept.text}


def test_the_intent_page_has_a_chat_command_section(admin_client: Client) -> None:
    intent = Intent.objects.get(slug="ask")
    response = admin_client.get(reverse("admin:fallbacks_intent_change", args=[intent.pk]))
    html = response.content.decode()
    assert "Chat command" in html
    form = response.context["adminform"].form
    for field in (
        "command",
        "aliases",
        "permission",
        "user_cooldown",
        "channel_cooldown",
        "ask_model",
        "prompt",
    ):
        assert field in form.fields, field
    assert 'name="phrases-0-language"' in html


def test_an_intent_is_saved_as_a_command_with_normalised_aliases(
    admin_client: Client, django_capture_on_commit_callbacks: CaptureCommits
) -> None:
    response = admin_client.post(
        reverse("admin:fallbacks_intent_add"),
        intent_form(
            Intent(slug="discord", enabled=True, command=True),
            [(None, "Le Discord : discord.gg/serda 🎧", True, "fr"), (None, "Our Discord 🎧", True, "en")],
            aliases=" DC, Serveur,dc, discord ",
            permission="vips",
            user_cooldown="60",
        ),
        follow=True,
    )
    assert response.status_code == 200
    intent = Intent.objects.get(slug="discord")
    assert intent.aliases == "dc, serveur"
    assert (intent.permission, intent.user_cooldown, intent.channel_cooldown) == ("vips", 60, None)
    assert dict(intent.phrases.values_list("language", "text")) == {
        "fr": "Le Discord : discord.gg/serda 🎧",
        "en": "Our Discord 🎧",
    }
    assert not warnings_of(response)


@pytest.mark.parametrize(
    ("aliases", "error"),
    [
        ("!dc", "Write the aliases without the “!”"),
        ("dc, deux mots", "Not a command name: deux mots."),
        ("dc; serveur", "Not a command name: dc; serveur."),
        (",".join(f"a{i:02}" for i in range(50)), "Too many aliases: at most 200 characters"),
    ],
)
def test_a_bad_alias_is_refused(admin_client: Client, aliases: str, error: str) -> None:
    intent = Intent.objects.get(slug="chill")
    response = admin_client.post(
        reverse("admin:fallbacks_intent_change", args=[intent.pk]),
        intent_form(intent, current_rows(intent), aliases=aliases),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["aliases"]
    assert error in errors["aliases"][0]
    assert Intent.objects.get(pk=intent.pk).aliases == ""


def test_a_collision_is_saved_with_a_warning(admin_client: Client) -> None:
    Intent.objects.create(slug="discord", aliases="dc")
    response = admin_client.post(
        reverse("admin:fallbacks_intent_add"),
        intent_form(Intent(slug="socials", enabled=True, command=True), [], aliases="ask, dc, reseaux"),
        follow=True,
    )
    assert Intent.objects.get(slug="socials").aliases == "ask, dc, reseaux"
    assert warnings_of(response) == [
        "Alias !ask is a built-in command: the built-in answers, not this intent.",
        "Alias !dc is also an alias of intent “discord”: “discord” answers it.",
    ]
    assert not [message for level, message in messages_of(response) if level == constants.ERROR]


def test_a_slug_named_after_a_built_in_command_is_saved_with_a_warning(admin_client: Client) -> None:
    response = admin_client.post(
        reverse("admin:fallbacks_intent_add"),
        intent_form(Intent(slug="forget", enabled=True, command=True), [(None, "Oublié 🫥", True)]),
        follow=True,
    )
    assert Intent.objects.filter(slug="forget").exists()
    assert warnings_of(response) == [
        "!forget is a built-in command: it answers, this intent never does as a command."
    ]


def test_no_collision_warning_when_the_intent_is_not_a_command(admin_client: Client) -> None:
    response = admin_client.post(
        reverse("admin:fallbacks_intent_add"),
        intent_form(Intent(slug="serdabot", enabled=True, command=False), [], aliases="ask"),
        follow=True,
    )
    assert Intent.objects.filter(slug="serdabot", command=False).exists()
    assert not warnings_of(response)


def test_editing_the_seeded_ask_intent_warns_about_nothing(admin_client: Client) -> None:
    intent = Intent.objects.get(slug="ask")
    response = admin_client.post(
        reverse("admin:fallbacks_intent_change", args=[intent.pk]),
        intent_form(intent, current_rows(intent), description="Réponses de secours de !ask"),
        follow=True,
    )
    assert Intent.objects.get(pk=intent.pk).description == "Réponses de secours de !ask"
    assert not warnings_of(response)


def test_the_phrase_list_shows_and_filters_by_language(admin_client: Client) -> None:
    response = admin_client.get(reverse("admin:fallbacks_phrase_changelist"), {"language__exact": "en"})
    assert response.status_code == 200
    listed = response.context["cl"].result_list
    assert {phrase.text for phrase in listed} == set(
        Phrase.objects.filter(language="en").values_list("text", flat=True)
    )
    assert len(listed) > 0
    assert '<td class="field-language">English</td>' in response.content.decode()


def test_the_intent_list_filters_commands(admin_client: Client) -> None:
    response = admin_client.get(reverse("admin:fallbacks_intent_changelist"), {"command__exact": "0"})
    assert {intent.slug for intent in response.context["cl"].result_list} == {
        "ask_timeout",
        "ask_error",
        "blocked",
    }


# The phrase editor: each phrase shown once, no silent cut of a paste, a warning for a leading
# "/" or ".", a preview of the reply, long phrases wrapping.

TEXTAREA = re.compile(r"<textarea\b[^>]*>")
PREVIEW_REPLY = re.compile(r'data-platform="(\w+)">.*?<q class="phrase-preview-reply">(.*?)</q>', re.S)


def textarea_tags(html: str) -> list[str]:
    return TEXTAREA.findall(html)


def test_the_intent_page_shows_each_phrase_once(admin_client: Client) -> None:
    intent = Intent.objects.get(slug="ask")
    short = intent.phrases.create(text="Court et efficace ⚡")
    long = intent.phrases.exclude(pk=short.pk).order_by("id").first()
    assert long is not None and len(long.text) > 60  # its title is cut: "…" at the end

    html = admin_client.get(reverse("admin:fallbacks_intent_change", args=[intent.pk])).content.decode()

    assert html.count(escape(short.text)) == 1  # in its textarea, not above it too
    assert escape(str(long)) not in html
    assert html.count(escape(long.text)) == 1
    assert 'class="js-inline-admin-formset inline-group phrase-inline"' in html
    # The saved rows keep the class Django's inlines.js reads (no delete button added).
    assert html.count('class="form-row has_original"') == intent.phrases.count()


def test_a_pasted_phrase_over_500_characters_is_refused_with_its_length(admin_client: Client) -> None:
    intent = Intent.objects.get(slug="ask")
    before = texts("ask")
    pasted = ("Une très longue réplique collée depuis un bloc-notes. " * 12)[:599] + "!"
    assert len(pasted) == 600
    rows = [*current_rows(intent), (None, pasted, True)]

    response = admin_client.post(
        reverse("admin:fallbacks_intent_change", args=[intent.pk]), intent_form(intent, rows)
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert TOO_LONG.replace("501", "600") in html
    assert texts("ask") == before
    # The whole paste is back in its box, which has no maxlength to cut the next one.
    assert escape(pasted) in html
    tags = textarea_tags(html)
    assert any('name="phrases-' in tag for tag in tags)
    assert not [tag for tag in tags if "maxlength" in tag]


@pytest.mark.parametrize("url_name", ["admin:fallbacks_phrase_add", "admin:fallbacks_intent_add"])
def test_no_phrase_box_carries_a_maxlength(admin_client: Client, url_name: str) -> None:
    html = admin_client.get(reverse(url_name)).content.decode()
    tags = [tag for tag in textarea_tags(html) if 'text"' in tag]  # name="text", "phrases-0-text"…
    assert tags
    assert not [tag for tag in tags if "maxlength" in tag]


def test_a_phrase_of_600_characters_is_refused_by_the_phrase_form(admin_client: Client) -> None:
    intent = Intent.objects.get(slug="ask")
    response = admin_client.post(
        reverse("admin:fallbacks_phrase_add"), {"intent": intent.pk, "text": "y" * 600, "enabled": "on"}
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"text": [TOO_LONG.replace("501", "600")]}
    assert not Phrase.objects.filter(intent=intent, text__startswith="yyy").exists()
    assert "maxlength" not in str(response.context["adminform"].form["text"])


@pytest.mark.parametrize(
    ("text", "warning"),
    [
        ("/me danse la macarena", "starts with “/”: chat will see it without that character."),
        (".commande", "starts with “.”: chat will see it without that character."),
        ("./ les deux", "starts with “./”: chat will see it without those characters."),
    ],
)
def test_a_phrase_starting_with_a_slash_or_a_dot_is_saved_with_a_warning(
    admin_client: Client, text: str, warning: str
) -> None:
    intent = Intent.objects.get(slug="chill")
    response = admin_client.post(
        reverse("admin:fallbacks_phrase_add"),
        {"intent": intent.pk, "text": text, "enabled": "on"},
        follow=True,
    )
    assert Phrase.objects.filter(intent=intent, text=text).exists()
    assert warnings_of(response) == [f"Phrase “{text}” (chill) {warning}"]


def test_an_inline_phrase_starting_with_a_slash_is_saved_with_a_warning(admin_client: Client) -> None:
    intent = Intent.objects.get(slug="chill")
    rows = [*current_rows(intent), (None, "/me fait une pause ☕", True)]
    response = admin_client.post(
        reverse("admin:fallbacks_intent_change", args=[intent.pk]), intent_form(intent, rows), follow=True
    )
    assert "/me fait une pause ☕" in texts("chill")
    assert warnings_of(response) == [
        "Phrase “/me fait une pause ☕” (chill) starts with “/”: chat will see it without that character."
    ]
    assert not [message for level, message in messages_of(response) if level == constants.ERROR]


def test_a_phrase_with_a_slash_or_a_dot_elsewhere_gets_no_warning(admin_client: Client) -> None:
    intent = Intent.objects.get(slug="chill")
    response = admin_client.post(
        reverse("admin:fallbacks_phrase_add"),
        {"intent": intent.pk, "text": "…et voilà, 1/2 fini.", "enabled": "on"},
        follow=True,
    )
    assert Phrase.objects.filter(intent=intent, text="…et voilà, 1/2 fini.").exists()
    assert not warnings_of(response)


def preview_of(client: Client, text: str) -> Any:
    return client.post(reverse("admin:fallbacks_phrase_preview"), {"text": text})


def test_the_preview_shows_the_reply_as_chat_would_get_it(admin_client: Client) -> None:
    text = "/Salut {user}, bienvenue chez {channel} <3 " + "bla " * 130
    response = preview_of(admin_client, text)
    assert response.status_code == 200
    html = response.content.decode()
    shown = {platform: unescape(reply) for platform, reply in PREVIEW_REPLY.findall(html)}
    # chat_reply is what the handler sends (tests/test_fallbacks_preview.py drives the handler).
    assert shown == {
        "twitch": preview.chat_reply(text, "twitch"),
        "discord": preview.chat_reply(text, "discord"),
    }
    assert shown["twitch"].startswith("@viewer42 Salut viewer42, bienvenue chez streamer <3 bla")
    assert "&lt;3" in html  # escaped: the phrase is text, never markup
    assert f"{len(shown['twitch'])}/500 characters, cut to fit" in html
    assert f"{len(shown['discord'])}/2000 characters</span>" in html
    assert "Chat will see it without the “/” at its start" in html


def test_the_preview_of_an_empty_phrase_asks_for_one(admin_client: Client) -> None:
    html = preview_of(admin_client, "   ").content.decode()
    assert "Write a phrase to see it as chat would." in html
    assert "phrase-preview-reply" not in html


def test_the_preview_is_for_staff_with_access_to_phrases(
    client: Client, admin_client: Client, django_user_model: Any
) -> None:
    url = reverse("admin:fallbacks_phrase_preview")
    anonymous = client.post(url, {"text": "Salut"})
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]

    staff = django_user_model.objects.create_user("modo", password="a-long-test-password-9", is_staff=True)
    client.force_login(staff)
    assert client.post(url, {"text": "Salut"}).status_code == 403

    assert admin_client.get(url, {"text": "Salut"}).status_code == 405


def test_every_phrase_form_has_a_try_button(admin_client: Client) -> None:
    intent = Intent.objects.get(slug="ask")
    url = reverse("admin:fallbacks_phrase_preview")
    button = f'class="button phrase-preview-button" data-url="{url}"'
    intent_page = admin_client.get(
        reverse("admin:fallbacks_intent_change", args=[intent.pk])
    ).content.decode()
    # One per saved phrase, one for the extra row, one in the template row the "Add" link copies.
    assert intent_page.count(button) == intent.phrases.count() + 2
    assert "Try this phrase" in intent_page
    phrase = intent.phrases.first()
    assert phrase is not None
    phrase_page = admin_client.get(
        reverse("admin:fallbacks_phrase_change", args=[phrase.pk])
    ).content.decode()
    assert phrase_page.count(button) == 1
    for html in (intent_page, phrase_page):
        assert '<script src="/static/fallbacks/phrases.js"></script>' in html


def test_long_phrases_wrap_in_the_lists(admin_client: Client) -> None:
    html = admin_client.get(reverse("admin:fallbacks_phrase_changelist")).content.decode()
    assert '<link href="/static/fallbacks/phrases.css" media="all" rel="stylesheet">' in html
    intent = Intent.objects.get(slug="ask")
    html = admin_client.get(reverse("admin:fallbacks_intent_change", args=[intent.pk])).content.decode()
    assert '<link href="/static/fallbacks/phrases.css" media="all" rel="stylesheet">' in html
    css = (Path(settings.BASE_DIR) / "static" / "fallbacks" / "phrases.css").read_text()
    rule = css[: css.index("}")]
    assert "#result_list td.field-text" in rule and ".phrase-preview" in rule
    assert "overflow-wrap: anywhere;" in rule
