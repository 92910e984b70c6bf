// Live updates for the LLM availability dashboard.
// New rows arrive over /ws/dashboard/ as {kind, data}. Probes and state changes are drawn at
// once; the server-rendered panels are then refreshed in place (never a page reload).
(function () {
  "use strict";
  const panels = document.getElementById("panels");
  const status = document.getElementById("live-status");
  const feed = document.getElementById("live-feed");
  if (!panels || !status || !feed) return;
  const timeZone = panels.dataset.timeZone || "UTC";
  const STATES = { up: "Up", down: "Down", cooling: "Cooling down", not_configured: "Not configured" };
  const FEED_MAX = 50, REFRESH_DELAY = 2000, REFRESH_MIN_GAP = 10000;
  let socket = null, retryDelay = 1000, everConnected = false, lostAt = null;
  let refreshTimer = null, lastRefresh = 0;

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

  function describe(kind, d) {
    switch (kind) {
      case "probe":
        return `${d.tier} probe: ` + (d.ok ? `up, ${Math.round(d.latency_ms || 0)} ms` : `down, ${d.error || "error"}${d.detail ? ": " + d.detail : ""}`);
      case "call":
        return `reply to ${d.platform} !${d.intent} from ${d.source}, ${Math.round(d.latency_ms || 0)} ms`;
      case "tier_event":
        return `${d.tier} is now ${STATES[d.state] || d.state}${d.error ? " (" + d.error + ")" : ""}`;
      case "boot":
        return `bot started (${d.process || d.mode}): LLM ${d.found ? "found" + (d.model ? ", " + d.model : "") : "not found" + (d.error ? ", " + d.error : "")}`;
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
    title.textContent = `${when(d.created)} · ` + (d.ok
      ? `up · ${d.latency_ms == null ? "ok" : Math.round(d.latency_ms) + " ms"}`
      : `down · ${d.error || "error"}${d.detail ? ": " + d.detail : ""}`);
    rect.append(title);
    svg.append(rect);
    const beats = svg.querySelectorAll("rect.beat");
    for (let i = 0; i < beats.length - slots; i++) beats[i].remove();
    const kept = svg.querySelectorAll("rect.beat");
    const offset = slots - kept.length;
    kept.forEach((r, i) => r.setAttribute("x", String((offset + i) * (bar + gap))));
  }

  function setState(d) {
    const badge = panels.querySelector(`[data-state-for="${CSS.escape(d.tier)}"]`);
    if (badge) {
      badge.textContent = STATES[d.state] || d.state;
      badge.className = "state state-" + d.state;
    }
    const since = panels.querySelector(`[data-since-for="${CSS.escape(d.tier)}"]`);
    if (since) since.textContent = `since ${when(d.created)}` + (d.error ? ` · ${d.error}` : "");
  }

  async function refresh() {
    refreshTimer = null;
    lastRefresh = Date.now();
    try {
      const response = await fetch(panels.dataset.refreshUrl, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
      if (response.redirected || !response.ok) {
        setStatus("Your session has ended: reload the page to log in again.", "offline");
        return;
      }
      panels.innerHTML = await response.text();
    } catch (e) {
      // The socket's own close handler reports lost connections; the next event retries.
    }
  }

  function scheduleRefresh() {
    if (refreshTimer !== null) return;
    const wait = Math.max(REFRESH_DELAY, lastRefresh + REFRESH_MIN_GAP - Date.now());
    refreshTimer = setTimeout(refresh, wait);
  }

  function onMessage(event) {
    let message;
    try { message = JSON.parse(event.data); } catch (e) { return; }
    const kind = message.kind, d = message.data || {};
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
      if (everConnected) {
        setStatus(`Live · reconnected at ${when(new Date().toISOString())} after losing the connection at ${when(lostAt)}`, "live");
        // Rows saved while the socket was down never reached this page: redraw from the database.
        if (panels.dataset.live === "1") refresh();
      } else {
        setStatus("Live", "live");
      }
      everConnected = true;
      lostAt = null;
    };
    socket.onmessage = onMessage;
    socket.onclose = (event) => {
      if (event.code === 4403) {
        setStatus("Live updates refused: log in as a staff member.", "offline");
        return;
      }
      if (lostAt === null) lostAt = new Date().toISOString();
      const seconds = Math.round(retryDelay / 1000);
      setStatus(`Connection lost at ${when(lostAt)}: reconnecting in ${seconds} s…`, "offline");
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30000);
    };
  }

  connect();
})();
