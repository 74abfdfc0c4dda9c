// Small helpers every page uses: building elements (text is always set as text, never as
// HTML, so nothing a record says can run as script), times in the city's zone, the API.

export function el(tag, attrs = {}, ...children) {
  const svg = ["svg", "polygon", "rect", "circle", "text", "g", "polyline", "line", "title"].includes(tag);
  const node = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const FORMAT = new Intl.DateTimeFormat("zh-CN", {
  timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});

export function clock(epoch) {
  if (!epoch) return "";
  return `${FORMAT.format(new Date(epoch * 1000)).replaceAll("/", "-")} +08:00`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(seconds);
  if (Math.abs(s) < 60) return `${s}s`;
  if (Math.abs(s) < 3600) return `${Math.floor(s / 60)}m ${Math.abs(s % 60)}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor(Math.abs(s % 3600) / 60)}m`;
}

export function severityClass(severity) {
  return `sev-${severity}`;
}

export async function api(path, options = {}, csrf = null) {
  const headers = { ...(options.headers || {}) };
  if (csrf) headers["X-CSRF-Token"] = csrf;
  if (options.body && typeof options.body !== "string") {
    headers["Content-Type"] = "application/json";
    options = { ...options, body: JSON.stringify(options.body) };
  }
  const response = await fetch(path, { credentials: "same-origin", ...options, headers });
  try {
    return await response.json();
  } catch (err) {
    return { error: `${response.status} ${response.statusText}` };
  }
}
