// The web chat: send a line over the websocket, show the reply with what produced it
// (the same fields as `manage.py chat --json`). Texts go through gettext() (the /jsi18n/ catalogue).
(function () {
  "use strict";
  const log = document.getElementById("log"), status = document.getElementById("status");
  const form = document.getElementById("say"), input = document.getElementById("text");
  let socket, delay = 500;

  function ms(value) { return Math.round(value) + " ms"; }

  function badge(li, text, cls) {
    const b = document.createElement("span");
    b.className = "badge " + cls;
    b.textContent = text;
    li.append(" ", b);
  }

  function line(text, cls) {
    const li = document.createElement("li");
    if (cls) li.className = cls;
    li.textContent = text;
    log.append(li); log.scrollTop = log.scrollHeight;
    return li;
  }

  // e.g. "local timeout ReadTimeout 2000 ms", as the chat command's text output says it.
  function tierText(tier) {
    const parts = [tier.tier, tier.outcome];
    if (tier.error) parts.push(tier.error);
    if (typeof tier.ms === "number") parts.push(ms(tier.ms));
    return parts.join(" ");
  }

  function reply(data) {
    const li = line(data.reply, "bot");
    badge(li, data.source, data.source);
    // Which phrase set went out; none when a model answered.
    if (data.fallback_intent) { badge(li, data.fallback_intent, "intent"); li.dataset.fallbackIntent = data.fallback_intent; }
    const facts = [data.intent, ms(data.latency_ms)];
    if (typeof data.first_token_ms === "number") {
      facts.push(interpolate(gettext("first token %(ms)s"), { ms: ms(data.first_token_ms) }, true));
    }
    const tiers = data.tiers || [];
    if (tiers.length) facts.push(interpolate(gettext("tiers: %(tiers)s"), { tiers: tiers.map(tierText).join("; ") }, true));
    const detail = document.createElement("small");
    detail.className = "muted detail";
    detail.textContent = facts.join(" · ");
    li.append(detail);
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(scheme + "://" + location.host + "/ws/chat/");
    socket.onopen = () => { status.textContent = gettext("connected"); status.className = "status"; delay = 500; };
    socket.onclose = () => { status.textContent = gettext("disconnected, reconnecting…"); status.className = "status offline"; setTimeout(connect, delay); delay = Math.min(delay * 2, 10000); };
    socket.onmessage = (e) => {
      const data = JSON.parse(e.data);
      if (data.error) line(data.error, "me");
      else if (data.reply === null) line(gettext("(no reply: not a command or a mention)"), "me");
      else reply(data);
    };
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text || socket.readyState !== WebSocket.OPEN) return;
    line(text, "me"); socket.send(JSON.stringify({text})); input.value = "";
  });
  connect();
})();
