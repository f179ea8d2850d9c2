/* /wall/: the command centre's live map. Start-up state comes from the snapshot endpoint, its parts read in
   parallel (KPIs, per-cell counts, cameras and the last events; the 7-day heat; the viewport's open cases;
   the teams); cells are vector tiles, cases are fetched for the viewport only.
   The page then follows /ws/feed/ through static/js/realtime.js: while the socket is down it shows a
   "reconnecting" badge, and on reconnect the server replays what it missed after the last seq (or says
   reload, and the snapshot is loaded again). Which statuses are open and how the lights rank come from
   the server (the page config's `states`, and each case envelope's `open` and `light`). */
import { RealtimeClient } from "../realtime.js";
import { api, config, countdown, fitDistrict, h, map as leafletMap, states, t, timeText } from "./common.js";
import { inbox } from "./inbox.js";
import { speakerConfig, speakerForm } from "./speakers.js";

const $ = (id) => document.getElementById(id);
const map = leafletMap();
const state = { cells: {}, shade: "open", connected: true, caseMarkers: new Map(), cameraMarkers: new Map(), card: null };
// Read-only: browser tests and bench/wall_load.py watch the wall's progress here (nothing reads it back).
window.gridmgmtWall = state;

/* --- layers --- */
// Cells by their open (or overdue) case count; the legend (wall.html) names the same three steps.
const cellColor = (n) => (n >= 5 ? "#e74c3c" : n >= 3 ? "#e67e22" : n >= 1 ? "#b9770e" : null);
// A cell tile carries each cell's id once, as its MVT feature id (geo.selectors.cell_tile_mvt); VectorGrid
// hands a style function the properties only, so each feature's id is copied there when its tile arrives.
const CellTiles = L.VectorGrid.Protobuf.extend({
  _getVectorTilePromise(...args) {
    return L.VectorGrid.Protobuf.prototype._getVectorTilePromise.apply(this, args).then((tile) => {
      for (const f of (tile.layers.cells && tile.layers.cells.features) || []) f.properties.id = f.id;
      return tile;
    });
  },
});
const cells = new CellTiles(config.cellTiles, {
  minZoom: config.cellMinZoom,
  maxZoom: 19,
  interactive: false,
  rendererFactory: L.canvas.tile,
  getFeatureId: (f) => f.id,
  vectorTileLayerStyles: {
    cells: (props, zoom) => {
      const c = state.cells[props.id];
      const n = c ? (state.shade === "open" ? c[0] : c[1]) : 0;
      const fill = cellColor(n);
      if (fill) return { weight: 1, color: fill, fill: true, fillColor: fill, fillOpacity: 0.75 };
      // Empty cells: a hairline when a screen holds thousands of them; zoomed in to a street, a cell is a
      // few hundred pixels wide and the hairline vanished on the dark wall.
      return zoom >= 16
        ? { weight: 1, color: "#4d77a8", opacity: 0.8, fill: false }
        : { weight: 0.3, color: "#27405f", opacity: 0.7, fill: false };
    },
  },
}).addTo(map);
cells.on("load", () => (state.tilesLoaded = (state.tilesLoaded || 0) + 1));
state.cellLayer = cells; // browser tests read a tile's styled features here
// Leaflet's GridLayer.redraw() ignores minZoom: below it, it would request every (empty) tile of the
// view — 35 at 1920×1080, 117 at 3840×2160 — on each refresh. Tiles loaded later are styled from state.cells.
const redrawCells = () => map.getZoom() >= config.cellMinZoom && cells.redraw();

// Off at start (footer toggle): over the shaded cells it made the district one orange blob.
const heat = L.heatLayer([], { radius: 18, blur: 22, minOpacity: 0.25, gradient: { 0.3: "#2e86de", 0.6: "#f1c40f", 1: "#e74c3c" } });
// Cameras and cases cluster apart: cameras as small squares (offline count in red) drawn beside their point
// (CSS shifts them up-right) and only from zoom CAMERA_MIN_ZOOM, where they no longer pile onto the case
// circles; below it the legend counts them and the alert panel lists the offline ones.
const clusterIcon = (cls, html) => L.divIcon({ className: "", html: `<div class="${cls}">${html}</div>`, iconSize: null });
const cameras = L.markerClusterGroup({
  chunkedLoading: true,
  showCoverageOnHover: false,
  maxClusterRadius: 60,
  iconCreateFunction: (cluster) => {
    const all = cluster.getAllChildMarkers();
    const off = all.filter((m) => m.options.online === false).length;
    return clusterIcon("gm-cam-cluster", `${all.length}${off ? `<i>${off}</i>` : ""}`);
  },
});
const CAMERA_MIN_ZOOM = 14;
let camerasWanted = true;
const camerasShow = () => {
  const on = camerasWanted && zoomSeen() >= CAMERA_MIN_ZOOM;
  if (on && !map.hasLayer(cameras)) cameras.addTo(map);
  if (!on && map.hasLayer(cameras)) map.removeLayer(cameras);
};
map.on("zoomend", camerasShow);
// The lights worst first, as the server ranks them (gridmgmt.states.LIGHTS); a cluster shows the worst light
// of its timed cases. "none" (no running clock: unfiled reports, parked cases) ranks below every light, so it
// never hides one: a cluster holding only those has their own colour, and any cluster shows their count.
const rank = (light) => {
  const i = states.lights.indexOf(light || "none");
  return i < 0 ? states.lights.length : i;
};
const casesLayer = L.markerClusterGroup({
  chunkedLoading: true,
  showCoverageOnHover: false,
  maxClusterRadius: 40,
  disableClusteringAtZoom: 16,
  iconCreateFunction: (cluster) => {
    const all = cluster.getAllChildMarkers();
    const worst = all.reduce((w, m) => (rank(m.options.light) < rank(w) ? m.options.light : w), "none");
    const unclocked = all.filter((m) => (m.options.light || "none") === "none").length;
    const escalated = all.some((m) => m.options.level > 0);
    const badge = unclocked && unclocked < all.length ? `<i>${unclocked}</i>` : "";
    return clusterIcon(`gm-case-cluster`, `<span data-light="${worst}"${escalated ? ' data-escalated="true"' : ""}>${all.length}${badge}</span>`);
  },
}).addTo(map);
// Team names only when zoomed in: at district zoom 78 labels would cover the map.
// Thresholds below are for a 1080-line screen: a 2160-line one shows the same ground one zoom level higher
// with everything twice the size (the CSS unit --u), so it compares its zoom less one.
const zoomSeen = () => map.getZoom() - Math.log2(Math.max(1, window.innerHeight / 1080));
const zoomClass = () => map.getContainer().classList.toggle("gm-far", zoomSeen() < 14);
map.on("zoomend", zoomClass);
zoomClass();
const teams = L.layerGroup().addTo(map);
const teamMarkers = new Map();
const icon = (cls, attrs, html) => L.divIcon({ className: "", html: `<div class="${cls}" ${attrs || ""}>${html || ""}</div>`, iconSize: null });

/* --- KPIs and ticker --- */
function kpis(k) {
  document.querySelectorAll(".gm-kpi").forEach((n) => {
    if (!(n.dataset.key in k)) return;
    const v = k[n.dataset.key];
    let text = v === null || v === undefined ? "–" : String(v);
    if (v !== null && v !== undefined && n.dataset.format === "pct") text = (v * 100).toFixed(1) + "%";
    if (v !== null && v !== undefined && n.dataset.format === "score") text = Number(v).toFixed(2);
    n.querySelector("b").textContent = text;
    const of = n.dataset.of && k[n.dataset.of];
    if (of) {  // the rate's part and whole, after its label (0.0 % early in the day may be 0 of 2)
      n.querySelector(".gm-kpi-of")?.remove();
      n.querySelector("span").append(h("small", { class: "gm-kpi-of", text: `${of[0]} / ${of[1]}` }));
    }
  });
}
function tick(e) {
  const li = h("li", { "data-type": e.type, "data-event": e.id }, h("time", { text: new Date(e.at).toLocaleTimeString("zh-CN", { hour12: false }) }), `${e.type_label} · ${e.case_code}${e.category ? " · " + e.category : ""}`);
  $("ticker").prepend(li);
  while ($("ticker").children.length > 30) $("ticker").lastChild.remove();
}

/* --- cameras: online or offline as the server says (snapshot rows, then `camera.status` events) --- */
const cameraIcon = (c) => icon("gm-cam", `data-online="${c.online === true}" data-camera="${esc(c.code)}" title="${esc(c.name)} (${esc(c.code)})"`, "");
function cameraMarker(c) {
  const m = L.marker([c.lat, c.lon], { icon: cameraIcon(c), keyboard: false, online: c.online === true, code: c.code, name: c.name });
  if (c.id !== undefined) state.cameraMarkers.set(c.id, m);
  return m;
}
function cameraLegend() {
  const all = [...state.cameraMarkers.values()];
  const off = all.filter((m) => m.options.online === false).length;
  $("cameras-online").textContent = String(all.length - off);
  $("cameras-offline").textContent = String(off);
}
function cameraChanged(d) {
  const m = state.cameraMarkers.get(d.camera_id);
  if (!m) {
    cameras.addLayer(cameraMarker({ ...d, id: d.camera_id }));
  } else {
    m.options.online = d.online === true;
    m.setIcon(cameraIcon({ online: d.online, code: d.code, name: d.name }));
    cameras.refreshClusters(m); // a cluster's red offline count
  }
  cameraLegend();
}

/* --- snapshot --- */
async function snapshot(parts) {
  const r = await api(config.snapshot + (parts ? `?only=${parts}` : ""));
  if (!r.ok) return false;
  const s = r.data;
  if (s.kpis) kpis(s.kpis);
  if (s.cells) {
    state.cells = s.cells;
    redrawCells();
  }
  if (s.heat) heat.setLatLngs(s.heat.map(([lat, lon, n]) => [lat, lon, Math.min(1, n / 5)]));
  if (s.cameras) {
    cameras.clearLayers();
    state.cameraMarkers.clear();
    cameras.addLayers(s.cameras.map(([lat, lon, online, id, code, name]) => cameraMarker({ lat, lon, online, id, code, name })));
    cameraLegend();
  }
  if (s.ticker) {
    $("ticker").replaceChildren();
    s.ticker.forEach(tick);
  }
  if (s.areas) areaLabels(s.areas);
  if (s.alerts) alerts(s.alerts);
  return true;
}

/* --- street/town and community names (the snapshot's "areas": a point inside each, the page's language) --- */
const streetNames = L.layerGroup();
const communityNames = L.layerGroup();
let areasWanted = true;
function areaLabels(rows) {
  streetNames.clearLayers();
  communityNames.clearLayers();
  for (const [lat, lon, level, name] of rows) {
    const m = L.marker([lat, lon], { icon: icon(`gm-area-label`, `data-level="${esc(level)}"`, esc(name)), interactive: false, keyboard: false, pane: "gmLabels" });
    (level === "street" ? streetNames : communityNames).addLayer(m);
  }
  state.areaLabels = rows.length;
  areasShow();
}
map.createPane("gmLabels").style.zIndex = 450; // over the cells and the heat, under the markers
map.getPane("gmLabels").style.pointerEvents = "none";
// Streets from the district's zoom, communities from 15 (a 1 km community is ~200 px wide there; at the
// district's zoom ~1,000 names would cover the map). Names that would overlap one already shown are hidden,
// streets first: one read of every box, then one write (no layout thrash).
function declutter() {
  const labels = [];
  for (const layer of [streetNames, communityNames]) {
    if (map.hasLayer(layer)) layer.eachLayer((m) => m.getElement() && labels.push(m.getElement()));
  }
  labels.forEach((el) => (el.style.visibility = ""));
  const view = map.getContainer().getBoundingClientRect();
  const boxes = labels.map((el) => el.firstChild.getBoundingClientRect());
  const shown = [];
  const hide = [];
  boxes.forEach((r, i) => {
    if (r.right < view.left || r.left > view.right || r.bottom < view.top || r.top > view.bottom) return;
    if (shown.some((p) => r.left < p.right + 4 && r.right + 4 > p.left && r.top < p.bottom && r.bottom > p.top)) hide.push(labels[i]);
    else shown.push(r);
  });
  hide.forEach((el) => (el.style.visibility = "hidden"));
  state.areaLabelsShown = shown.length;
}
const areasShow = () => {
  const z = zoomSeen();
  const want = [
    [streetNames, areasWanted && z >= 9.5],
    [communityNames, areasWanted && z >= 15],
  ];
  for (const [layer, on] of want) {
    if (on && !map.hasLayer(layer)) layer.addTo(map);
    if (!on && map.hasLayer(layer)) map.removeLayer(layer);
  }
  declutter();
};
map.on("zoomend", areasShow);
map.on("moveend", declutter);

/* --- alerts the centre must act on (the snapshot's "alerts", refreshed after each burst of feed events) --- */
function alerts(a) {
  const levelName = (n) => (config.levels || {})[n] || String(n);
  const caseItem = (kind) => (c) =>
    h(
      "li",
      { "data-kind": kind, "data-case": c.code, "data-light": c.light || "none" },
      h("button", { type: "button", class: "gm-alert-case", onclick: () => openCard(c.id, c.code) }, h("b", { text: kind === "escalated" ? levelName(c.level) : t("alerts_urgent_tag") }), ` ${c.code} · ${c.category}`),
    );
  // Each group's full count, and its first few rows (the panel shares the column with the KPIs and the ticker).
  const groups = [
    ["escalated", t("alerts_escalated"), a.escalated, caseItem("escalated"), 4],
    ["urgent", t("alerts_urgent"), a.urgent, caseItem("urgent"), 3],
    ["cameras", t("alerts_cameras"), a.cameras, (c) => h("li", { "data-kind": "camera", "data-camera": c.code }, h("b", { text: t("alerts_offline_tag") }), ` ${c.name} (${c.code})${c.last_seen_at ? " · " + timeText(c.last_seen_at) : ""}`), 3],
  ];
  const items = [];
  for (const [kind, label, part, render, shown] of groups) {
    if (!part || !part.count) continue;
    items.push(h("li", { class: "gm-alert-head", "data-group": kind, text: `${label} ${part.count}` }));
    items.push(...part.rows.slice(0, shown).map(render));
  }
  if (!items.length) items.push(h("li", { class: "gm-muted", text: t("alerts_none") }));
  $("alerts").replaceChildren(...items);
  state.alerts = a;
}

/* --- cases in the viewport (never the whole district at once) --- */
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
// A feed envelope's category in the page's language (the envelope holds the site language's name).
const categoryName = (d) => (config.categoryNames || {})[d.category] || d.category_name;

// A case: a dot in its light's colour; escalated above the grid, a ring and its level; a click opens its card.
function caseMarker([lat, lon, code, light, category, statusLabel, id, level, urgency], fresh) {
  const attrs = `data-light="${esc(light)}" data-case="${esc(code)}" data-level="${Number(level) || 0}" data-urgency="${esc(urgency)}" title="${esc(code)} ${esc(category)} · ${esc(statusLabel)}"`;
  const m = L.marker([lat, lon], { icon: icon(`gm-case-dot${fresh ? " gm-pulse" : ""}`, attrs, level > 0 ? String(level) : ""), keyboard: false, light, level: Number(level) || 0, caseId: id });
  m.on("click", () => openCard(id, code));
  return m;
}

/* --- a case's card: what the centre needs to see of it (GET /api/cases/{id}/, the user's view of it) --- */
async function openCard(id, code) {
  state.card = code;
  $("card-title").textContent = code;
  $("card-body").replaceChildren(h("p", { class: "gm-muted", text: "…" }));
  $("case-card").hidden = false;
  const r = await api(`/api/cases/${id}/`);
  if (state.card !== code) return;
  if (!r.ok) return $("card-body").replaceChildren(h("p", { class: "gm-msg", role: "alert", text: r.message }));
  const c = r.data.properties;
  const light = c.light || "none";
  const row = (label, value) => (value ? [h("dt", { text: label }), h("dd", { text: value })] : []);
  const thumb = (c.photos || []).find((ph) => ph.kind === "before");
  $("card-title").textContent = `${c.code} · ${c.category ? c.category.label || c.category.name : ""}`;
  const parts = [
    h("p", { class: "gm-card-status" }, h("span", { class: "gm-light", "data-light": light, text: (states.lightLabels || {})[light] || light }), ` ${c.status_label}`, c.level > 0 ? h("span", { class: "gm-card-level", text: ` · ${t("card_level")}: ${c.level_label}` }) : null),
    h(
      "dl",
      { class: "gm-card-facts" },
      row(t("card_urgency"), c.urgency_label),
      row(t("card_address"), c.address),
      row(t("card_reported"), timeText(c.reported_at)),
      row(t("card_deadline"), c.deadline_at ? `${timeText(c.deadline_at)} (${countdown(c.deadline_at)})` : ""),
      row(t("card_team"), c.team ? c.team.name : ""),
      row(t("card_source"), c.source_label),
    ),
    c.description ? h("p", { class: "gm-card-text", text: c.description }) : null,
    thumb ? h("img", { class: "gm-card-photo", src: thumb.url, alt: "" }) : null,
    config.caseHref ? h("a", { class: "gm-card-link", href: config.caseHref.replace("{id}", c.id).replace("{code}", c.code), text: t("card_open") }) : null,
  ];
  $("card-body").replaceChildren(...parts.filter(Boolean));
}
$("card-close").addEventListener("click", () => {
  state.card = null;
  $("case-card").hidden = true;
});
let viewportSeq = 0;
let viewportBbox = null;
const bboxOf = (b) => [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(5)).join(",");
async function loadViewport() {
  const seq = ++viewportSeq;
  const bbox = bboxOf(map.getBounds());
  viewportBbox = bbox;
  // The snapshot endpoint's "cases" part: the open cases in view as plain rows, newest first, at most 500.
  const r = await api(`${config.snapshot}?only=cases&bbox=${bbox}`);
  if (!r.ok || seq !== viewportSeq) return;
  const { cases: rows, count } = r.data.cases;
  casesLayer.clearLayers();
  state.caseMarkers.clear();
  const markers = rows.map((row) => {
    const m = caseMarker(row, false);
    state.caseMarkers.set(row[2], m);
    return m;
  });
  casesLayer.addLayers(markers);
  state.viewportCases = markers.length;
  state.viewportTotal = count;
  $("viewport-note").textContent = t("viewport_cases", { shown: markers.length, total: count });
  state.rendered = true;
}
let moveTimer = null;
map.on("moveend", () => {
  clearTimeout(moveTimer);
  // A moveend that leaves the view where it was (the start-up fit, a resize settling) asks nothing.
  moveTimer = setTimeout(() => bboxOf(map.getBounds()) !== viewportBbox && loadViewport(), 250);
});

/* --- teams --- */
async function loadTeams() {
  const r = await api(`${config.snapshot}?only=teams`);
  if (!r.ok) return;
  for (const [id, code, name, status, lat, lon] of r.data.teams) {
    let m = teamMarkers.get(id);
    const ic = icon("gm-team", `data-status="${esc(status)}" data-team="${esc(code)}"`, esc(name));
    if (!m) {
      m = L.marker([lat, lon], { icon: ic, keyboard: false }).addTo(teams);
      teamMarkers.set(id, m);
    } else {
      m.setLatLng([lat, lon]);
      m.setIcon(ic);
    }
  }
}

/* --- street loudspeakers: a marker each; a click opens the call form for this speaker or its cell (when the
   server says this user may call: config.speakers.call), else just names it --- */
const speakersLayer = L.layerGroup().addTo(map);
async function loadSpeakers() {
  const r = await api(`${config.snapshot}?only=speakers`);
  if (!r.ok) return;
  speakersLayer.clearLayers();
  for (const [lat, lon, id, code, name, active, cell] of r.data.speakers) {
    const attrs = `data-speaker="${esc(code)}" data-active="${active === true}" title="${esc(name)} (${esc(code)})"`;
    const m = L.marker([lat, lon], { icon: icon("gm-spk", attrs), keyboard: false, zIndexOffset: 500 });
    if (speakerConfig.call) m.on("click", () => openSpeaker({ id, code, name, cell }));
    else m.bindPopup(`<strong>${esc(name)}</strong><br>${esc(code)}`);
    speakersLayer.addLayer(m);
  }
  state.speakers = r.data.speakers.length;
}
function openSpeaker(s) {
  $("speak-title").textContent = `${s.name} (${s.code})`;
  const targets = [{ label: t("speaker_this"), body: { speaker: s.id } }];
  if (s.cell) targets.push({ label: t("speaker_cell"), body: { cell: s.cell } });
  $("speak-body").replaceChildren(speakerForm({ targets }));
  $("speak-panel").hidden = false;
}
$("speak-close").addEventListener("click", () => ($("speak-panel").hidden = true));

/* --- the live feed: /ws/feed/ through static/js/realtime.js (seq, replay on reconnect, reload) --- */
const labels = config.eventLabels || {};
let refreshTimer = null;
function refreshSoon() {
  // Rates and per-cell counts come from the snapshot; refresh them shortly after a burst of changes.
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => snapshot("kpis,cells,alerts"), 700);
}
// A case envelope says whether the case is open (`data.open`); without it, its status against the server's list.
const isOpen = (d) => (typeof d.open === "boolean" ? d.open : states.open.includes(d.status));
function caseChanged(env) {
  const d = env.data;
  const old = state.caseMarkers.get(d.code);
  if (old) casesLayer.removeLayer(old);
  state.caseMarkers.delete(d.code);
  if (!isOpen(d)) return;
  const fresh = env.type === "case.created";
  const m = caseMarker([d.lat, d.lon, d.code, d.light || "none", categoryName(d), states.labels[d.status] || d.status, d.case_id, d.level, d.urgency], fresh);
  state.caseMarkers.set(d.code, m);
  casesLayer.addLayer(m);
}
function teamMoved(d) {
  const m = teamMarkers.get(d.team_id);
  if (!m) return loadTeams();
  if (d.lon !== undefined && d.lat !== undefined) m.setLatLng([d.lat, d.lon]);
  if (d.status) m.setIcon(icon("gm-team", `data-status="${d.status}" data-team="${d.team}"`, d.team_name));
}
function apply(events) {
  let cases = 0;
  for (const env of events) {
    state.lastSeq = env.seq;
    const d = env.data || {};
    if (env.type === "case.created" || env.type === "case.updated" || env.type === "case.escalated") {
      cases += 1;
      tick({ id: env.seq, type: d.event, type_label: labels[d.event] || d.event, case_code: d.code, category: categoryName(d), at: env.at });
      caseChanged(env);
    } else if (env.type === "team.position" || env.type === "team.status") {
      teamMoved(d);
    } else if (env.type === "camera.status") {
      cameraChanged(d);
      cases += 1; // the offline list in the alerts
    }
  }
  if (cases) refreshSoon();
}
let everOpen = false;
function setConnected(ok) {
  state.connected = ok;
  $("reconnect").hidden = ok;
}
// The signed-in user's notifications (realtime/PROTOCOL.md: `all` and the area scopes never carry them).
const box = inbox();
function startFeed() {
  const rt = new RealtimeClient({
    scopes: [config.scope, box && box.scope].filter(Boolean),
    onSnapshot: async (scope) => {
      if (box && scope === box.scope) return box.load();
      // The first snapshot has every part (cameras too); a "reload" after an outage leaves the cameras.
      // The 7-day heat (one point per cell with reports: ~20,000 in Pudong) is the slowest part: it comes
      // in a request of its own, so the server reads it while it reads the rest.
      const rest = state.ready ? "kpis,cells,ticker,alerts" : "kpis,cells,cameras,ticker,alerts,areas";
      await Promise.all([snapshot(rest), snapshot("heat"), loadViewport(), loadTeams()]);
      state.ready = true;
    },
    onEvents: (scope, events) => (box && scope === box.scope ? box.apply(events) : apply(events)),
    onKpi: (_scope, kpi) => {
      const k = kpi.data || {};
      kpis({ open: k.open, overdue: k.overdue, received: k.reported_today, closed: k.closed_today });
    },
    onState: (st) => {
      if (st === "open") everOpen = true;
      setConnected(st === "open" || (st === "connecting" && !everOpen));
    },
  });
  state.realtime = rt;
  rt.connect();
}
/* --- controls --- */
document.querySelectorAll('input[name="shade"]').forEach((r) =>
  r.addEventListener("change", () => {
    state.shade = r.value;
    $("legend-cells-title").textContent = t(r.value === "open" ? "legend_cells_open" : "legend_cells_overdue");
    redrawCells();
  }),
);
const toggle = (id, layer) => $(id).addEventListener("change", (e) => (e.target.checked ? layer.addTo(map) : map.removeLayer(layer)));
$("layer-cameras").addEventListener("change", (e) => {
  camerasWanted = e.target.checked;
  camerasShow();
});
$("layer-areas").addEventListener("change", (e) => {
  areasWanted = e.target.checked;
  areasShow();
});
toggle("layer-teams", teams);
toggle("layer-speakers", speakersLayer);
toggle("layer-heat", heat);
setInterval(() => ($("clock").textContent = new Date().toLocaleString("zh-CN", { hour12: false })), 1000);

/* --- legend: the lights in the server's words (gridmgmt.states.LIGHT_LABELS) --- */
$("legend-lights").replaceChildren(
  ...states.lights.map((light) => h("span", { class: "gm-legend-light" }, h("i", { class: "gm-sw gm-sw-dot", "data-light": light }), (states.lightLabels || {})[light] || light)),
);

fitDistrict(20);
camerasShow();
areasShow();
startFeed();
setInterval(loadTeams, 60000); // positions arrive on the feed; this only picks up new or renamed teams
loadSpeakers();
