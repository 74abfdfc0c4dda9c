// The work-order board, the scorecards and the silences.
import { el, clock, duration, severityClass, api } from "./util.js";

const STATES = ["open", "acknowledged", "on_scene", "resolved", "false_alarm"];
const STATE_NAMES = { open: "created 待签收", acknowledged: "acknowledged 已签收",
  on_scene: "on scene 已到场", resolved: "resolved 已处置", false_alarm: "false alarm 误报" };
const boardFilters = { level: "", department: "" };

async function feedback(state, order, status, note) {
  const reply = await api(`/api/orders/${encodeURIComponent(order.order_id)}/feedback`,
    { method: "POST", body: { status, note } }, state.csrf);
  if (reply.error) alert(reply.error);
}

// The acknowledgement countdown, ticked in place every second: redrawing the board instead
// would replace the buttons under a click.
function showDue(node) {
  const left = Number(node.dataset.ackDue) - Date.now() / 1000;
  node.classList.toggle("overdue", left < 0);
  node.textContent = left < 0 ? `acknowledgement overdue by ${duration(-left)}`
    : `acknowledge within ${duration(left)}`;
  return node;
}

export function tickCountdowns(page) {
  for (const node of page.querySelectorAll(".due[data-ack-due]")) showDue(node);
}

function orderCard(state, order) {
  const waiting = order.state === "open";
  const act = (status, label) => el("button", { type: "button", "data-action": status,
    onclick: () => feedback(state, order, status, null) }, label);
  return el("div", { class: `order ${severityClass(order.severity)}`, "data-order-id": order.order_id,
    "data-state": order.state, "data-level": order.level, "data-department": order.department,
    "data-key": order.key, "data-escalations": String(order.escalations) },
  el("div", { class: "order-head" }, `${order.department} · ${order.level} · ${order.severity}`),
  el("div", {}, el("a", { href: `#/incident/${order.incident_id}` }, order.summary)),
  el("div", { class: "order-meta" }, `created ${clock(order.created_at)}`,
    order.escalations ? el("span", { class: "escalated" }, ` · escalated ×${order.escalations}`) : ""),
  waiting ? showDue(el("div", { class: "due", "data-ack-due": order.ack_due })) : "",
  el("div", { class: "actions" },
    waiting ? act("acknowledged", "Acknowledge 签收") : "",
    ["open", "acknowledged"].includes(order.state) ? act("on_scene", "On scene 到场") : "",
    ["open", "acknowledged", "on_scene"].includes(order.state) ? act("resolved", "Resolve 处置完毕") : "",
    ["open", "acknowledged", "on_scene"].includes(order.state) ? act("false_alarm", "False alarm 误报") : "",
    // A note goes with a status: on an order nobody has taken yet, it acknowledges it.
    el("button", { type: "button", "data-action": "note", onclick: () => {
      const note = prompt(waiting ? "Acknowledge with a note 签收并备注" : "Note 备注");
      if (note) feedback(state, order, waiting ? "acknowledged" : null, note);
    } }, waiting ? "Acknowledge + note 签收并备注" : "Note 备注")));
}

export function renderOrders(page, state) {
  const orders = [...state.orders.values()].filter((o) =>
    (!boardFilters.level || o.level === boardFilters.level)
    && (!boardFilters.department || o.department === boardFilters.department));
  const pick = (name, values) => {
    const select = el("select", { "data-board-filter": name, onchange: (e) => {
      boardFilters[name] = e.target.value; renderOrders(page, state);
    } }, el("option", { value: "" }, "all"), ...values.map((v) => el("option", { value: v }, v)));
    select.value = boardFilters[name];
    return el("label", {}, `${name} `, select);
  };
  const all = [...state.orders.values()];
  const columns = STATES.map((s) => el("section", { class: "column", "data-column": s },
    el("h3", {}, `${STATE_NAMES[s]} (${orders.filter((o) => o.state === s).length})`),
    ...orders.filter((o) => o.state === s).sort((a, b) => a.ack_due - b.ack_due)
      .map((o) => orderCard(state, o))));
  page.replaceChildren(el("h2", {}, "Work orders 工单"),
    el("div", { class: "board-filters" },
      pick("level", [...new Set(all.map((o) => o.level))].sort()),
      pick("department", [...new Set(all.map((o) => o.department))].sort())),
    el("div", { class: "board" }, ...columns));
}

function share(value) {
  return value === null || value === undefined ? "–" : `${Math.round(value * 100)}%`;
}

function chart(points, field, label) {
  const values = points.map((p) => p[field]).filter((v) => v !== null && v !== undefined);
  if (values.length < 2) return el("span", { class: "chart-empty" }, "–");
  const max = Math.max(...values, 1e-9);
  const step = 120 / (values.length - 1);
  const path = values.map((v, i) => `${(i * step).toFixed(1)},${(30 - (v / max) * 28).toFixed(1)}`).join(" ");
  return el("svg", { class: "chart", viewBox: "0 0 120 32", width: "120", height: "32" },
    el("title", {}, `${label}: ${values.length} points`), el("polyline", { points: path }));
}

export async function renderScorecards(page, state) {
  const history = await api("/api/scorecards");
  const cards = [...state.scorecards.values()];
  const table = (scope) => el("table", { class: "scorecards", "data-scope": scope },
    el("thead", {}, el("tr", {}, ...["name", "orders", "open", "ack p50", "ack p90", "resolve p50",
      "resolve p90", "SLA", "false alarms", "SLA over time", "open over time"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...cards.filter((c) => c.scope === scope).sort((a, b) => a.name.localeCompare(b.name))
      .map((c) => {
        const points = history[`${c.scope}:${c.name}`] || [];
        return el("tr", { "data-card": `${c.scope}:${c.name}` }, el("td", {}, c.name),
          el("td", {}, c.orders), el("td", {}, c.open_backlog),
          el("td", {}, duration(c.ack_p50_s)), el("td", {}, duration(c.ack_p90_s)),
          el("td", {}, duration(c.resolve_p50_s)), el("td", {}, duration(c.resolve_p90_s)),
          el("td", {}, share(c.sla_compliance)), el("td", {}, share(c.false_alarm_rate)),
          el("td", {}, chart(points, "sla_compliance", "SLA compliance")),
          el("td", {}, chart(points, "open_backlog", "open orders")));
      })));
  const scopes = [...new Set(cards.map((c) => c.scope))].sort();
  // The daily report, as `yujing report --since 24h` prints it (the command centre's).
  const report = state.user.role === "command" ? el("p", { class: "report-links" },
    "Daily report 日报: ", el("a", { href: "/api/report?format=table", "data-report": "table" }, "text"),
    " · ", el("a", { href: "/api/report?format=csv", "data-report": "csv" }, "CSV"),
    " · ", el("a", { href: "/api/report?format=json", "data-report": "json" }, "JSON")) : "";
  page.replaceChildren(el("h2", {}, "Scorecards 行政问效 — the last 24 hours"), report,
    ...scopes.flatMap((scope) => [el("h3", {}, `per ${scope}`), table(scope)]));
}

export function renderSilences(page, state) {
  const now = Date.now() / 1000;
  const rows = [...state.silences.values()].filter((s) => s.ends_at > now)
    .sort((a, b) => a.ends_at - b.ends_at).map((s) => {
      const matchers = Object.entries(s.matchers).map(([k, v]) => `${k}=${v}`).join(", ");
      return el("tr", { "data-silence-id": s.silence_id, "data-matchers": matchers },
      el("td", {}, matchers),
      el("td", {}, s.reason), el("td", {}, s.created_by), el("td", {}, clock(s.ends_at)),
      el("td", {}, state.user.silences ? el("button", { type: "button", "data-action": "expire",
        onclick: async () => {
          const reply = await api(`/api/silences/${s.silence_id}/expire`, { method: "POST" }, state.csrf);
          if (reply.error) alert(reply.error);
        } }, "Expire 解除") : ""));
    });
  const form = el("form", { class: "silence-form", onsubmit: async (e) => {
    e.preventDefault();
    const data = new FormData(e.target);
    const matchers = Object.fromEntries(String(data.get("matchers")).split(/[\n,]/)
      .map((m) => m.trim()).filter(Boolean).map((m) => m.split("=").map((x) => x.trim())));
    const reply = await api("/api/silences", { method: "POST", body: {
      matchers, duration: data.get("duration"), reason: data.get("reason") } }, state.csrf);
    if (reply.error) alert(reply.error); else e.target.reset();
  } },
  el("label", {}, "Match 匹配 (field=value, …) ", el("input", { name: "matchers", required: true,
    placeholder: "key=TANK-7, model_id=hazchem.tank.*" })),
  el("label", {}, "For 时长 ", el("input", { name: "duration", value: "2h", required: true })),
  el("label", {}, "Reason 原因 ", el("input", { name: "reason", required: true })),
  el("button", { type: "submit" }, "Silence 静默"));
  page.replaceChildren(el("h2", {}, "Silences 静默"),
    el("table", { class: "silences" }, el("tbody", {}, ...rows)),
    state.user.silences ? form : el("p", {}, "Silences are set by the command centre."));
}
