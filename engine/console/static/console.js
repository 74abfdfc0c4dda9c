// The console page: one live stream (server-sent events) keeps the state; pages draw from it.
// The stream's event ids are Kafka positions, so a reconnect resumes exactly where it left off.
import { renderMap } from "./map.js";
import { renderOrders, renderScorecards, renderSilences, tickCountdowns } from "./boards.js";
import { el, clock, severityClass, api } from "./util.js";

const STALE_AFTER_MS = 10000;
const state = {
  user: null, csrf: null, alerts: new Map(), incidents: new Map(), orders: new Map(),
  silences: new Map(), scorecards: new Map(), feedback: [], live: false, lastHeard: 0,
  filters: {}, muted: localStorage.getItem("yujing.muted") === "1", seenRed: new Set(),
  changes: 0, snapshots: 0, cursor: null,
};
window.yujing = state;  // for the browser tests and the curious

const kiosk = new URLSearchParams(location.search).has("kiosk");
if (kiosk) document.body.classList.add("kiosk");

function keyed(list, field) {
  return new Map(list.map((item) => [item[field], item]));
}

function takeSnapshot(snap) {
  state.alerts = keyed(snap.alerts, "alert_id");
  state.incidents = keyed(snap.incidents, "incident_id");
  state.orders = keyed(snap.orders, "order_id");
  state.silences = keyed(snap.silences, "silence_id");
  state.scorecards = keyed(snap.scorecards, "name");
  for (const a of state.alerts.values()) if (a.severity === "red") state.seenRed.add(a.alert_id);
  state.live = snap.live;
  state.snapshots += 1;
}

function takeChange(change) {
  const r = change.record;
  state.changes += 1;
  if (change.kind === "alert" && r) {
    if (r.severity === "red" && r.state !== "resolved" && !state.seenRed.has(r.alert_id)) {
      state.seenRed.add(r.alert_id);
      if (!r.silenced_by.length && !r.inhibited_by) beep();
    }
    state.alerts.set(r.alert_id, r);
  } else if (change.kind === "incident") {
    if (r) state.incidents.set(r.incident_id, r); else state.incidents.delete(change.key);
  } else if (change.kind === "order") {
    if (r) state.orders.set(r.order_id, r); else state.orders.delete(change.key);
  } else if (change.kind === "silence") {
    if (r && r.ends_at * 1000 > Date.now()) state.silences.set(r.silence_id, r);
    else state.silences.delete(r ? r.silence_id : change.key);
  } else if (change.kind === "scorecard" && r) {
    state.scorecards.set(`${r.scope}:${r.name}`, r);
  } else if (change.kind === "feedback" && r) {
    state.feedback.push(r);
  }
}

// -- the live stream ------------------------------------------------------------------------
function setLive(value) {
  const badge = document.getElementById("live");
  badge.dataset.state = value;
  badge.textContent = { live: "live 实时", reconnecting: "reconnecting 重连中",
    stale: "stale 数据陈旧", connecting: "connecting" }[value];
}

// What each page draws from: a change of another kind leaves the page as it is, so a click
// on a marker or a button is not lost to a redraw for, say, a scorecard published meanwhile.
const DRAWN_FROM = { wall: ["alert", "incident"], map: ["incident"], orders: ["order", "feedback"],
  scorecards: ["scorecard"], silences: ["silence"] };

function currentPage() {
  return (location.hash || "#/wall").split("/")[1] || "wall";
}

function shownBy(page) {
  return DRAWN_FROM[page] || [];  // a detail page is drawn once, when opened
}

let redraw = null;
function scheduleDraw() {
  if (redraw === null) redraw = requestAnimationFrame(() => { redraw = null; draw(); });
}

function connect() {
  // A new EventSource does not send Last-Event-ID: the cursor goes in the query instead, so a
  // page whose stream was closed for good resumes where it was, not from a new snapshot.
  const cursor = state.cursor ? `?cursor=${encodeURIComponent(state.cursor)}` : "";
  const source = new EventSource(`/api/stream${cursor}`);
  const took = (e) => { if (e.lastEventId) state.cursor = e.lastEventId; };
  source.addEventListener("snapshot", (e) => {
    took(e); takeSnapshot(JSON.parse(e.data)); heard(state.live); fillFilters(); scheduleDraw();
  });
  source.addEventListener("change", (e) => {
    const change = JSON.parse(e.data);
    took(e); takeChange(change); heard(true);
    if (change.kind === "alert") fillFilters();  // a new model, district or town to pick
    if (shownBy(currentPage()).includes(change.kind)) scheduleDraw();
  });
  source.addEventListener("status", (e) => { heard(JSON.parse(e.data).live); });
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
    setLive(Date.now() - state.lastHeard > STALE_AFTER_MS ? "stale" : "reconnecting");
  };
}

function heard(live) {
  state.lastHeard = Date.now();
  state.live = live;
  setLive(live ? "live" : "stale");
}

setInterval(() => {  // nothing heard for a while: what the page shows may be out of date
  if (Date.now() - state.lastHeard > STALE_AFTER_MS) setLive("stale");
  if (currentPage() === "orders") tickCountdowns(document.getElementById("page"));
}, 1000);

// -- sound on a new red alert (no audio file: a tone from the Web Audio API) ----------------
let audio = null;
function beep() {
  if (state.muted) return;
  try {
    audio = audio || new AudioContext();
    const tone = audio.createOscillator();
    const gain = audio.createGain();
    tone.frequency.value = 880;
    gain.gain.value = 0.2;
    tone.connect(gain).connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.6);
  } catch (err) { /* no sound on this machine */ }
}

function showMute() {
  const button = document.getElementById("mute");
  button.textContent = state.muted ? "🔕" : "🔔";
  button.dataset.muted = state.muted ? "1" : "0";
}

// -- filters --------------------------------------------------------------------------------
function passes(alert) {
  const f = state.filters;
  if (f.severity && alert.severity !== f.severity) return false;
  if (f.model_id && alert.model_id !== f.model_id) return false;
  if (f.district && alert.district !== f.district) return false;
  if (f.town && alert.town !== f.town) return false;
  if (f.department && !alert.departments.includes(f.department)) return false;
  return true;
}

function fillFilters() {
  const values = { department: new Set(), district: new Set(), town: new Set(), model_id: new Set() };
  for (const a of state.alerts.values()) {
    a.departments.forEach((d) => values.department.add(d));
    if (a.district) values.district.add(a.district);
    if (a.town) values.town.add(a.town);
    values.model_id.add(a.model_id);
  }
  for (const select of document.querySelectorAll("select[data-filter]")) {
    const name = select.dataset.filter;
    if (!values[name]) continue;
    const chosen = select.value;
    const known = [...select.options].map((o) => o.value).slice(1).join("\n");
    if (known === [...values[name]].sort().join("\n")) continue;  // an open list stays open
    select.replaceChildren(el("option", { value: "" }, "all"),
      ...[...values[name]].sort().map((v) => el("option", { value: v }, v)));
    select.value = chosen;
  }
}

// -- the wall -------------------------------------------------------------------------------
function alertRow(a) {
  const flags = [a.silenced_by.length ? "silenced 已静默" : "", a.inhibited_by ? "inhibited 已抑制" : "",
    a.reopened ? `reopened ×${a.reopened}` : ""].filter(Boolean).join(" · ");
  return el("tr", { class: `alert ${severityClass(a.severity)} state-${a.state}`,
    "data-alert-id": a.alert_id, "data-key": a.key, "data-severity": a.severity, "data-state": a.state },
  el("td", {}, el("span", { class: "sev" }, a.severity)),
  el("td", {}, a.state),
  el("td", {}, el("a", { href: `#/alert/${a.alert_id}` }, a.summary)),
  el("td", {}, a.model_id),
  el("td", {}, [a.district, a.town, a.grid_id].filter(Boolean).join(" / ")),
  el("td", {}, a.departments.join(", ")),
  el("td", {}, clock(a.emitted_at || a.last_ts)),
  el("td", {}, flags));
}

const ORDER = { red: 0, orange: 1, yellow: 2, blue: 3 };
function renderWall(page) {
  const alerts = [...state.alerts.values()].filter(passes)
    .sort((x, y) => (x.state === "resolved") - (y.state === "resolved")
      || ORDER[x.severity] - ORDER[y.severity] || (y.last_ts - x.last_ts));
  const incidentOf = new Map();
  for (const inc of state.incidents.values()) for (const id of inc.alert_ids) incidentOf.set(id, inc);
  const groups = new Map();
  for (const a of alerts) {
    const inc = incidentOf.get(a.alert_id);
    const key = inc ? inc.incident_id : `alone:${a.alert_id}`;
    if (!groups.has(key)) groups.set(key, { incident: inc, alerts: [] });
    groups.get(key).alerts.push(a);
  }
  const firing = alerts.filter((a) => a.state !== "resolved").length;
  const body = [];
  for (const [key, group] of groups) {
    const inc = group.incident;
    body.push(el("tr", { class: "incident-head", "data-incident-id": inc ? inc.incident_id : "" },
      el("td", { colspan: "8" }, inc
        ? el("a", { href: `#/incident/${inc.incident_id}` },
          `incident ${inc.incident_id} · ${inc.place} · ${inc.state} · ${inc.alert_ids.length} alerts`)
        : "no incident yet")));
    body.push(...group.alerts.map(alertRow));
  }
  page.replaceChildren(
    el("h2", {}, `Alerts 预警 — ${firing} firing, ${alerts.length} shown`),
    el("table", { class: "wall" },
      el("thead", {}, el("tr", {}, ...["level", "state", "summary", "model", "place",
        "departments", "time", ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...body)));
}

// -- detail of an incident or an alert ------------------------------------------------------
async function renderDetail(page, kind, id) {
  const story = await api(`/api/${kind}s/${encodeURIComponent(id)}`);
  if (story.error) { page.replaceChildren(el("p", { class: "error" }, story.error)); return; }
  const head = kind === "incident" ? story.incident : story.alert;
  const models = Object.values(story.models).map((m) => el("div", { class: "model" },
    el("h3", {}, `${m.name || m.id} (${m.id})`),
    el("p", {}, m.description || ""),
    el("pre", {}, JSON.stringify(m.condition || {}, null, 2))));
  const latest = story.changes[story.changes.length - 1];
  page.replaceChildren(
    el("h2", { "data-detail": kind }, `${kind} ${id}`),
    el("p", { class: severityClass(head.severity) }, head.summary || head.place || ""),
    el("h3", {}, "Evidence 证据"), el("pre", {}, JSON.stringify(latest ? latest.evidence : {}, null, 2)),
    el("h3", {}, "Models 模型"), ...models,
    el("h3", {}, "Timeline 时间线"),
    el("table", { class: "timeline" }, el("tbody", {}, ...story.timeline.map((t) => el("tr", {},
      el("td", {}, clock(t.at)), el("td", {}, t.what), el("td", {}, t.detail || ""),
      el("td", {}, t.by || ""), el("td", {}, t.note || ""))))));
}

// -- routing --------------------------------------------------------------------------------
async function draw() {
  const page = document.getElementById("page");
  const [, name, id] = (location.hash || "#/wall").split("/");
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("on", a.dataset.page === name);
  document.getElementById("filters").hidden = name !== "wall";
  if (name === "map") renderMap(page, state);
  else if (name === "orders") renderOrders(page, state);
  else if (name === "scorecards") await renderScorecards(page, state);
  else if (name === "silences") renderSilences(page, state);
  else if (name === "incident" || name === "alert") {
    if (page.dataset.shown !== `${name}/${id}`) await renderDetail(page, name, id);
  } else renderWall(page);
  page.dataset.shown = name === "incident" || name === "alert" ? `${name}/${id}` : name;
}

async function start() {
  const me = await api("/api/me");
  if (me.error) { location.href = "/login"; return; }
  state.user = me;
  state.csrf = me.csrf;
  document.getElementById("who").textContent = `${me.name} · ${me.role}${me.area ? " " + me.area : ""}`;
  document.getElementById("logout").onclick = async () => {
    await api("/logout", { method: "POST" }, state.csrf); location.href = "/login";
  };
  document.getElementById("mute").onclick = () => {
    state.muted = !state.muted;
    localStorage.setItem("yujing.muted", state.muted ? "1" : "0");
    showMute();
  };
  for (const select of document.querySelectorAll("select[data-filter]")) {
    select.onchange = () => { state.filters[select.dataset.filter] = select.value; scheduleDraw(); };
  }
  window.addEventListener("hashchange", () => { document.getElementById("page").dataset.shown = ""; draw(); });
  showMute();
  connect();
}

start();
