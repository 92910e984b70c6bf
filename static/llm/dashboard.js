// Live updates for the LLM availability dashboard.
// New rows arrive over /ws/dashboard/ as {kind, data}. Probes and state changes are drawn at
// once; the server-rendered panels are then refreshed in place (never a page reload).
// {kind: "status", data: {live}} says whether the server still hears new rows: it cannot
// while it has lost its channel layer (Redis), although the socket itself stays open.
// Texts go through gettext() and interpolate() (Django's /jsi18n/ catalogue, loaded by base.html).
(function () {
  "use strict";
  const panels = document.getElementById("panels");
  const status = document.getElementById("live-status");
  const feed = document.getElementById("live-feed");
  if (!panels || !status || !feed) return;
  const timeZone = panels.dataset.timeZone || "UTC";
  const STATES = {
    up: gettext("Up"), down: gettext("Down"), cooling: gettext("Cooling down"), warming: gettext("Warming up"),
    budget: gettext("Daily budget reached"), not_configured: gettext("Not configured"), disabled: gettext("Disabled"),
    paused: gettext("Paused"), stopped: gettext("Bot stopped"),
  };
  const fmt = (text, values) => interpolate(text, values, true);
  const ms = (value) => fmt(gettext("%(ms)s ms"), { ms: Math.round(value || 0) });
  const FEED_MAX = 50, REFRESH_DELAY = 2000, REFRESH_MIN_GAP = 10000;
  let socket = null, retryDelay = 1000, everConnected = false, lostAt = null;
  let refreshTimer = null, lastRefresh = 0, eventsSeen = 0, paused = false;

  let formatter;
  try {
    formatter = new Intl.DateTimeFormat("sv-SE", { timeZone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit" });
  } catch (e) {
    formatter = new Intl.DateTimeFormat("sv-SE", { year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }
  const when = (iso) => (iso ? formatter.format(new Date(iso)) : "");

  function setStatus(text, cls) {
    status.textContent = text;
    status.className = "live-status " + cls;
  }

  // What failed, as the server recorded it: an error class, then its message.
  const failure = (d) => `${d.error || gettext("error")}${d.detail ? ": " + d.detail : ""}`;

  function describe(kind, d) {
    switch (kind) {
      case "probe":
        return d.ok
          ? fmt(gettext("%(tier)s probe: up, %(latency)s"), { tier: d.tier, latency: ms(d.latency_ms) })
          : fmt(gettext("%(tier)s probe: down, %(failure)s"), { tier: d.tier, failure: failure(d) });
      case "call": {
        const source = d.source + (d.fallback_intent ? " (" + d.fallback_intent + ")" : "");
        const text = fmt(gettext("reply to %(platform)s !%(intent)s from %(source)s, %(latency)s"),
          { platform: d.platform, intent: d.intent, source, latency: ms(d.latency_ms) });
        return d.first_token_ms != null
          ? text + fmt(gettext(", first token %(latency)s"), { latency: ms(d.first_token_ms) })
          : text;
      }
      case "tier_event":
        return fmt(gettext("%(tier)s is now %(state)s"), { tier: d.tier, state: STATES[d.state] || d.state }) +
          (d.error ? " (" + d.error + ")" : "");
      case "usage": {
        const values = { tier: d.tier, model: d.model || "?", tokens: (d.prompt_tokens || 0) + (d.completion_tokens || 0) };
        return d.reported
          ? fmt(gettext("%(tier)s request (%(model)s): %(tokens)s tokens"), values)
          : fmt(gettext("%(tier)s request (%(model)s): %(tokens)s tokens (estimated)"), values);
      }
      case "boot": {
        const process = d.process || d.mode;
        return d.found
          ? fmt(gettext("bot started (%(process)s): LLM found"), { process }) + (d.model ? ", " + d.model : "")
          : fmt(gettext("bot started (%(process)s): LLM not found"), { process }) + (d.error ? ", " + d.error : "");
      }
      default:
        return kind;
    }
  }

  function addToFeed(kind, d) {
    const empty = feed.querySelector(".empty");
    if (empty) empty.remove();
    const li = document.createElement("li");
    li.dataset.kind = kind;
    const time = document.createElement("time");
    time.dateTime = d.created || "";
    time.textContent = when(d.created);
    li.append(time, describe(kind, d));
    feed.prepend(li);
    while (feed.children.length > FEED_MAX) feed.lastElementChild.remove();
  }

  function addBeat(d) {
    const svg = panels.querySelector(`svg.heartbeat[data-heartbeat="${CSS.escape(d.tier)}"]`);
    if (!svg) return;
    const slots = +svg.dataset.slots, bar = +svg.dataset.bar, gap = +svg.dataset.gap;
    const ns = "http://www.w3.org/2000/svg";
    const rect = document.createElementNS(ns, "rect");
    rect.setAttribute("class", "beat new " + (d.ok ? "up" : "down"));
    rect.setAttribute("y", "0");
    rect.setAttribute("width", String(bar));
    rect.setAttribute("height", "30");
    rect.setAttribute("rx", "2");
    const title = document.createElementNS(ns, "title");
    // As the server draws it (llm/dashboard/charts.py beat_title).
    title.textContent = `${when(d.created)} · ` + (d.ok
      ? `${gettext("up")} · ${d.latency_ms == null ? gettext("ok") : ms(d.latency_ms)}`
      : `${gettext("down")} · ${failure(d)}`);
    rect.append(title);
    svg.append(rect);
    const beats = svg.querySelectorAll("rect.beat");
    for (let i = 0; i < beats.length - slots; i++) beats[i].remove();
    const kept = svg.querySelectorAll("rect.beat");
    const offset = slots - kept.length;
    kept.forEach((r, i) => r.setAttribute("x", String((offset + i) * (bar + gap))));
  }

  function setState(d) {
    // Only the server knows whether a failure is downtime (the tier had answered before) or a
    // tier never found: the badge is redrawn by the refresh this event schedules, not guessed here.
    const badge = panels.querySelector(`[data-state-for="${CSS.escape(d.tier)}"]`);
    if (badge) badge.classList.add("updating");
  }

  async function refresh() {
    refreshTimer = null;
    lastRefresh = Date.now();
    const seenAtStart = eventsSeen;
    try {
      const response = await fetch(panels.dataset.refreshUrl, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
      if (response.redirected || !response.ok) {
        setStatus(gettext("Your session has ended: reload the page to log in again."), "offline");
        return;
      }
      panels.innerHTML = await response.text();
      // A row drawn live while this response was on its way may be missing from it (it was
      // rendered before that row was saved): fetch again rather than hide it until the next event.
      if (eventsSeen !== seenAtStart && refreshTimer === null) refreshTimer = setTimeout(refresh, REFRESH_DELAY);
    } catch (e) {
      // The socket's own close handler reports lost connections; the next event retries.
    }
  }

  function scheduleRefresh() {
    if (refreshTimer !== null) return;
    const wait = Math.max(REFRESH_DELAY, lastRefresh + REFRESH_MIN_GAP - Date.now());
    refreshTimer = setTimeout(refresh, wait);
  }

  function onServerStatus(d) {
    if (d.live === false) {
      paused = true;
      setStatus(gettext("Live updates paused: the server lost its channel layer, retrying…"), "offline");
    } else if (d.live === true && paused) {
      paused = false;
      setStatus(fmt(gettext("Live · resumed at %(time)s"), { time: when(new Date().toISOString()) }), "live");
      // Rows saved while the server was deaf never reached this page: redraw from the database.
      if (panels.dataset.live === "1") refresh();
    }
  }

  function onMessage(event) {
    let message;
    try { message = JSON.parse(event.data); } catch (e) { return; }
    const kind = message.kind, d = message.data || {};
    if (kind === "status") return onServerStatus(d);
    eventsSeen++;
    addToFeed(kind, d);
    // A custom range in the past does not move with new rows; only the feed shows them.
    if (panels.dataset.live !== "1") return;
    if (kind === "probe") addBeat(d);
    if (kind === "tier_event") setState(d);
    scheduleRefresh();
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/ws/dashboard/`);
    socket.onopen = () => {
      retryDelay = 1000;
      paused = false;  // a new connection: the server says so again if it is still deaf
      if (everConnected) {
        setStatus(fmt(gettext("Live · reconnected at %(time)s after losing the connection at %(lost)s"),
          { time: when(new Date().toISOString()), lost: when(lostAt) }), "live");
        // Rows saved while the socket was down never reached this page: redraw from the database.
        if (panels.dataset.live === "1") refresh();
      } else {
        setStatus(gettext("Live"), "live");
      }
      everConnected = true;
      lostAt = null;
    };
    socket.onmessage = onMessage;
    socket.onclose = (event) => {
      if (event.code === 4403) {
        setStatus(gettext("Live updates refused: log in as a staff member."), "offline");
        return;
      }
      if (lostAt === null) lostAt = new Date().toISOString();
      const seconds = Math.round(retryDelay / 1000);
      setStatus(fmt(gettext("Connection lost at %(time)s: reconnecting in %(seconds)s s…"), { time: when(lostAt), seconds }), "offline");
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30000);
    };
  }

  connect();
})();
