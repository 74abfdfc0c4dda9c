// The city's map as SVG, from the reference data (districts, towns, their grid cells); no
// tiles, nothing online. Incidents are markers in their grid (else their town or district),
// coloured by severity; a district shows its count of open incidents; a click opens one.
import { el, api } from "./util.js";

let city = null;

function projector(polygons) {
  const lats = polygons.flat().map((p) => p[0]);
  const lons = polygons.flat().map((p) => p[1]);
  const [lat0, lat1, lon0, lon1] = [Math.min(...lats), Math.max(...lats), Math.min(...lons), Math.max(...lons)];
  const width = 900;
  const height = width * (lat1 - lat0) / ((lon1 - lon0) * Math.cos((lat0 * Math.PI) / 180)) || 600;
  return { width, height, at: ([lat, lon]) => [((lon - lon0) / (lon1 - lon0)) * width,
    height - ((lat - lat0) / (lat1 - lat0)) * height] };
}

function points(project, polygon) {
  return polygon.map((p) => project.at(p).map((v) => v.toFixed(1)).join(",")).join(" ");
}

function centre(polygon) {
  const n = polygon.length;
  return [polygon.reduce((s, p) => s + p[0], 0) / n, polygon.reduce((s, p) => s + p[1], 0) / n];
}

export async function renderMap(page, state) {
  city = city || await api("/api/map");
  if (!city.districts || !city.districts.length) {
    page.replaceChildren(el("p", {}, "No districts in the reference data (rules/reference)."));
    return;
  }
  const project = projector(city.districts.map((d) => d.polygon));
  const gridCentre = new Map();
  const townCentre = new Map(city.towns.map((t) => [t.id, centre(t.polygon)]));
  for (const town of city.towns) for (const g of town.grids) {
    gridCentre.set(g.id, [(g.box[0] + g.box[2]) / 2, (g.box[1] + g.box[3]) / 2]);
  }
  const districtCentre = new Map(city.districts.map((d) => [d.id, centre(d.polygon)]));
  const open = [...state.incidents.values()].filter((i) => i.state === "open");
  const counts = new Map();
  const markers = [];
  for (const inc of open) {
    if (inc.district) counts.set(inc.district, (counts.get(inc.district) || 0) + 1);
    const at = gridCentre.get(inc.grid_id) || townCentre.get(inc.town) || districtCentre.get(inc.district);
    if (!at) continue;
    const [x, y] = project.at(at);
    markers.push(el("circle", { class: `marker sev-${inc.severity}`, cx: x.toFixed(1), cy: y.toFixed(1),
      r: "9", "data-incident-id": inc.incident_id, "data-district": inc.district || "",
      onclick: () => { location.hash = `#/incident/${inc.incident_id}`; } },
    el("title", {}, `${inc.incident_id} · ${inc.place} · ${inc.severity}`)));
  }
  const svg = el("svg", { class: "map", viewBox: `0 0 ${project.width} ${project.height.toFixed(0)}` },
    el("g", { class: "grids" }, ...city.towns.flatMap((t) => t.grids.map((g) => el("polygon", {
      class: "grid", points: points(project, [[g.box[0], g.box[1]], [g.box[0], g.box[3]],
        [g.box[2], g.box[3]], [g.box[2], g.box[1]]]) }, el("title", {}, g.id))))),
    el("g", { class: "towns" }, ...city.towns.map((t) => el("polygon", { class: "town",
      points: points(project, t.polygon), "data-town": t.id }, el("title", {}, t.name)))),
    el("g", { class: "districts" }, ...city.districts.map((d) => {
      const [x, y] = project.at(centre(d.polygon));
      return el("g", { "data-district": d.id },
        el("polygon", { class: "district", points: points(project, d.polygon) }),
        el("text", { class: "district-name", x: x.toFixed(1), y: (y - 14).toFixed(1) }, d.name.split(" ")[0]),
        el("text", { class: "district-count", x: x.toFixed(1), y: (y + 10).toFixed(1),
          "data-count": String(counts.get(d.id) || 0) }, `${counts.get(d.id) || 0} open`));
    })),
    el("g", { class: "markers" }, ...markers));
  page.replaceChildren(el("h2", {}, `Map 地图 — ${open.length} open incidents`), svg);
}
