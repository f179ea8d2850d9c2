/* The dispatch map's track replay: who was where. A small control on the map picks a team (the
   teams this user may see: /api/teams/), a day and optionally one member; the server returns one GeoJSON
   Feature per device (/api/tracks/: a MultiLineString broken at long silences, `times` per vertex), the day's
   patrol coverage of the team (/api/kpis/coverage/) and its attendance (/api/attendance/: on duty at the first fix,
   off at the last). A slider (and ▶) moves a dot per device along its track through the day.
   Every figure is the server's; this file only draws. */
import { api, h, map, t } from "./common.js";

const COLOURS = ["#c0392b", "#2e86de", "#27ae60", "#8e44ad", "#e67e22", "#16a085", "#d35400", "#2c3e50"];
const m = map();
const layer = L.layerGroup().addTo(m);
let tracks = []; // [{feature, coords: [[lat, lon]…], times: [s…], dot}]
let timer = null;

const pad = (n) => String(n).padStart(2, "0");
const today = () => {
  const d = new Date();
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
};
const clock = (s) => {
  const d = new Date(s * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
};
const isoClock = (iso) => clock(Date.parse(iso) / 1000);

const team = h("select", { id: "trk-team", "aria-label": t("track_team") });
const member = h("select", { id: "trk-member", "aria-label": t("track_member") }, h("option", { value: "", text: t("track_all_members") }));
const day = h("input", { id: "trk-day", type: "date", value: today(), "aria-label": t("track_day") });
const show = h("button", { type: "button", id: "trk-show", class: "gm-primary", text: t("track_show") });
const clear = h("button", { type: "button", id: "trk-clear", class: "gm-secondary", text: "×", title: t("track_clear"), "aria-label": t("track_clear") });
const play = h("button", { type: "button", id: "trk-play", class: "gm-secondary", text: "▶", "aria-label": t("track_play"), disabled: true });
const slider = h("input", { id: "trk-time", type: "range", min: "0", max: "0", value: "0", step: "60", "aria-label": t("track_time"), disabled: true });
const at = h("output", { id: "trk-at", class: "gm-muted" });
const summary = h("div", { id: "trk-summary", class: "gm-trk-summary", role: "status" });
const body = h(
  "div",
  { class: "gm-trk-body", hidden: true },
  h("div", { class: "gm-trk-row" }, team),
  h("div", { class: "gm-trk-row" }, day, member),
  h("div", { class: "gm-trk-row" }, show, clear),
  h("div", { class: "gm-trk-row" }, play, slider, at),
  summary,
);
const toggle = h("button", { type: "button", id: "trk-toggle", class: "gm-trk-toggle", text: t("track_title"), "aria-expanded": "false" });
const box = h("div", { id: "tracks", class: "gm-trk leaflet-bar" }, toggle, body);

const Control = L.Control.extend({
  options: { position: "topright" },
  onAdd() {
    L.DomEvent.disableClickPropagation(box);
    L.DomEvent.disableScrollPropagation(box);
    return box;
  },
});
new Control().addTo(m);

let teamsLoaded = false;
toggle.addEventListener("click", async () => {
  body.hidden = !body.hidden;
  toggle.setAttribute("aria-expanded", String(!body.hidden));
  if (!body.hidden && !teamsLoaded) await loadTeams();
});

async function loadTeams() {
  const r = await api("/api/teams/?page_size=500");
  if (!r.ok) return say(r.message);
  teamsLoaded = true;
  const rows = (r.data.features || []).map((f) => ({ id: f.id ?? f.properties.id, name: f.properties.name, code: f.properties.code }));
  rows.sort((a, b) => (a.code || "").localeCompare(b.code || ""));
  team.replaceChildren(...rows.map((row) => h("option", { value: String(row.id), text: row.name })));
}

function say(text) {
  summary.replaceChildren(h("p", { class: "gm-msg", "data-kind": "error", text }));
}

function stop() {
  if (timer) clearInterval(timer);
  timer = null;
  play.textContent = "▶";
}

function reset() {
  stop();
  layer.clearLayers();
  tracks = [];
  slider.disabled = play.disabled = true;
  at.textContent = "";
}
clear.addEventListener("click", () => {
  reset();
  summary.replaceChildren();
});

show.addEventListener("click", async () => {
  if (!team.value || !day.value) return;
  reset();
  summary.replaceChildren(h("p", { class: "gm-muted", text: t("task_loading") }));
  const next = new Date(`${day.value}T00:00:00`);
  next.setDate(next.getDate() + 1);
  const end = `${next.getFullYear()}-${pad(next.getMonth() + 1)}-${pad(next.getDate())}T00:00:00`;
  const who = member.value ? `member=${member.value}` : `team=${team.value}`;
  const [tr, cov, att] = await Promise.all([
    api(`/api/tracks/?${who}&start=${day.value}T00:00:00&end=${end}`),
    api(`/api/kpis/coverage/?team=${team.value}&start=${day.value}&end=${day.value}`),
    api(`/api/attendance/?${who}&start=${day.value}&end=${day.value}`),
  ]);
  if (!tr.ok) return say(tr.message);
  draw(tr.data.features || []);
  const lines = [];
  const row = cov.ok ? (cov.data.results || [])[0] : null;
  if (row) {
    const pct = row.coverage === null ? "–" : `${(row.coverage * 100).toFixed(1)}%`;
    lines.push(h("p", { id: "trk-coverage" }, h("strong", { text: t("track_coverage") }), ` ${pct} (${row.cells_covered}/${row.cells})`));
  }
  if (!tracks.length) lines.push(h("p", { class: "gm-muted", text: t("track_none") }));
  if (att.ok && att.data.length) {
    lines.push(
      h(
        "ul",
        { class: "gm-trk-att", id: "trk-attendance" },
        att.data.map((a, i) =>
          h(
            "li",
            {},
            h("span", { class: "gm-trk-swatch", style: `background:${colourOf(a.user_id, i)}` }),
            `${a.name || a.username} · ${t("track_on_off", { on: isoClock(a.on_at), off: isoClock(a.off_at) })}`,
          ),
        ),
      ),
    );
  }
  summary.replaceChildren(...lines);
  if (!member.value) fillMembers(tr.data.features || []);
});

const userColour = new Map();
function colourOf(userId, fallback) {
  if (!userColour.has(userId)) userColour.set(userId, COLOURS[userColour.size % COLOURS.length] || COLOURS[fallback % COLOURS.length]);
  return userColour.get(userId);
}

function fillMembers(features) {
  const seen = new Map();
  for (const f of features) seen.set(f.properties.user, f.properties.name || f.properties.username);
  member.replaceChildren(h("option", { value: "", text: t("track_all_members") }), ...[...seen].map(([id, name]) => h("option", { value: String(id), text: name })));
}
team.addEventListener("change", () => member.replaceChildren(h("option", { value: "", text: t("track_all_members") })));

function draw(features) {
  userColour.clear();
  const bounds = [];
  let lo = Infinity;
  let hi = -Infinity;
  for (const f of features) {
    if (!f.geometry) continue;
    const colour = colourOf(f.properties.user, tracks.length);
    const parts = f.geometry.coordinates.map((line) => line.map(([x, y]) => [y, x]));
    const coords = parts.flat();
    const times = f.properties.times || [];
    L.polyline(parts, { color: colour, weight: 3, opacity: 0.8 })
      .bindTooltip(`${f.properties.name || f.properties.username} (${f.properties.device})`)
      .addTo(layer);
    const dot = L.circleMarker(coords[0], { radius: 7, color: "#fff", weight: 2, fillColor: colour, fillOpacity: 1 }).addTo(layer);
    tracks.push({ coords, times, dot });
    bounds.push(...coords);
    if (times.length) {
      lo = Math.min(lo, times[0]);
      hi = Math.max(hi, times[times.length - 1]);
    }
  }
  if (!tracks.length) return;
  m.fitBounds(L.latLngBounds(bounds), { padding: [40, 40], maxZoom: 17 });
  slider.min = String(lo);
  slider.max = String(hi);
  slider.value = String(hi);
  slider.disabled = play.disabled = false;
  moveTo(hi);
}

/* Each device's dot at time s: its last fix at or before s (before its first fix: at the first). */
function moveTo(s) {
  at.textContent = clock(s);
  for (const tr of tracks) {
    const { times, coords } = tr;
    let lo = 0;
    let hi = times.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (times[mid] <= s) lo = mid;
      else hi = mid - 1;
    }
    if (coords[lo]) tr.dot.setLatLng(coords[lo]);
  }
}
slider.addEventListener("input", () => moveTo(Number(slider.value)));
play.addEventListener("click", () => {
  if (timer) return stop();
  if (Number(slider.value) >= Number(slider.max)) slider.value = slider.min;
  play.textContent = "❚❚";
  const step = Math.max(60, Math.round((Number(slider.max) - Number(slider.min)) / 300)); // ~30 s for a day
  timer = setInterval(() => {
    const next = Math.min(Number(slider.max), Number(slider.value) + step);
    slider.value = String(next);
    moveTo(next);
    if (next >= Number(slider.max)) stop();
  }, 100);
});
