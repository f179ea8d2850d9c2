/* /dispatch/: the queue (sortable by deadline), one case's photos, place, duplicates nearby and ranked
   teams on the map with their reasons, and the actions the server says this user may take on the case
   now (each case's `actions`, from gridmgmt.rules). This page holds no role and no status table: an action
   that needs a team is offered on each ranked team, one that needs a case on each duplicate, the rest as
   buttons that open a form for their inputs. A refused action shows the server's message and changes
   nothing. */
import { RealtimeClient } from "../realtime.js";
import { actionBody, actionButton, actionForm, actionLabel, api, countdown, h, map as leafletMap, say, t, timeText } from "./common.js";
import { inbox } from "./inbox.js";
import { speakerConfig, speakerForm } from "./speakers.js";

const $ = (id) => document.getElementById(id);
const map = leafletMap();
const overlay = L.layerGroup().addTo(map);
const queueLayer = L.layerGroup().addTo(map);
let cases = [];
let current = null;

const inputOf = (action, kind) => (action.inputs || []).find((i) => i.kind === kind);
const actionsWith = (p, kind) => (p.actions || []).filter((a) => inputOf(a, kind));

const QUEUE_PAGE = 200;
async function loadQueue() {
  // The server orders by deadline, so the page holds the most urgent cases of the whole queue.
  const order = $("sort").dataset.dir === "asc" ? "deadline" : "-deadline";
  const r = await api(`/api/cases/?status=${$("queue-filter").value}&order=${order}&page_size=${QUEUE_PAGE}`);
  if (!r.ok) return say($("queue-msg"), r.message, "error");
  cases = r.data.features;
  // Never hide that there are more: the count comes with the page.
  say($("queue-msg"), r.data.count > cases.length ? t("queue_more", { shown: cases.length, count: r.data.count }) : "");
  renderQueue();
}
function renderQueue() {
  const dir = $("sort").dataset.dir === "asc" ? 1 : -1;
  const key = (f) => f.properties.deadline_at || f.properties.reported_at || "";
  cases.sort((a, b) => dir * key(a).localeCompare(key(b)));
  queueLayer.clearLayers();
  if (!cases.length) return $("queue").replaceChildren(h("li", { class: "gm-muted", text: t("no_cases") }));
  $("queue").replaceChildren(
    ...cases.map((f) => {
      const p = f.properties;
      const [lon, lat] = f.geometry.coordinates;
      L.circleMarker([lat, lon], { radius: 5, color: "#7f8c8d", fillOpacity: 0.6 }).on("click", () => select(f.id)).addTo(queueLayer);
      // The row is one button (Enter and Space open it, a screen reader names it); a click anywhere on the row too.
      return h(
        "li",
        { "data-light": p.light, "data-case": p.code, "aria-current": current && current.id === f.id ? "true" : null, onclick: () => select(f.id) },
        h(
          "button",
          { type: "button", class: "gm-queue-open" },
          h("strong", { text: `${(p.category && (p.category.label || p.category.name)) || ""} · ${p.status_label}` }),
          h("span", { class: "gm-muted", text: `${p.code} · ${p.source_label}` }),
          p.deadline_at && p.light !== "none" ? h("span", { text: countdown(p.deadline_at) }) : null, // no clock running (parked…): no countdown
        ),
      );
    }),
  );
}
$("queue-filter").addEventListener("change", loadQueue);
$("sort").addEventListener("click", () => {
  const asc = $("sort").dataset.dir !== "asc";
  $("sort").dataset.dir = asc ? "asc" : "desc";
  $("sort").textContent = $("sort").textContent.replace(/[↑↓]/, asc ? "↑" : "↓");
  loadQueue();
});

async function select(id) {
  const r = await api(`/api/cases/${id}/`);
  if (!r.ok) return say($("queue-msg"), r.message, "error");
  current = { id, feature: r.data, version: r.data.properties.version };
  document.querySelectorAll("#queue li").forEach((li) => {
    if (li.dataset.case === r.data.properties.code) li.setAttribute("aria-current", "true");
    else li.removeAttribute("aria-current");
  });
  showCase(r.data);
}

function showCase(f) {
  const p = f.properties;
  const [lon, lat] = f.geometry.coordinates;
  $("detail-empty").hidden = true;
  $("detail-body").hidden = false;
  $("d-title").textContent = `${p.code} ${(p.category && (p.category.label || p.category.name)) || ""}`;
  $("d-status").textContent = p.status_label + (p.extension_pending ? ` · ${t("extension_pending")}` : "");
  $("d-source").textContent = p.source_label;
  $("d-cell").textContent = p.cell;
  $("d-deadline").textContent = !p.deadline_at ? "—" : p.light === "none" ? timeText(p.deadline_at) : `${timeText(p.deadline_at)}(${countdown(p.deadline_at)})`;
  $("d-team").textContent = (p.team && p.team.name) || "—";
  $("d-desc").textContent = p.description || "";
  $("d-photos").replaceChildren(...(p.photos || []).map((ph) => h("a", { href: ph.url, target: "_blank" }, h("img", { src: ph.url, alt: ph.kind, title: ph.kind }))));
  say($("d-msg"), "");
  overlay.clearLayers();
  L.circleMarker([lat, lon], { radius: 11, color: "#c0392b", weight: 3, fillOpacity: 0.5 }).addTo(overlay);
  map.setView([lat, lon], Math.max(map.getZoom(), 15));
  renderActions(p);
  loadCandidates(f);
  loadDuplicates(f);
  loadTimeline(current.id);
  loadSpeakers(f);
  document.dispatchEvent(new CustomEvent("gm:case-shown", { detail: f })); // desk_actions.js: the print link
}

/* --- actions --- */

function closeForm() {
  $("d-form").replaceChildren();
  $("d-form").hidden = true;
}

/* Start an action with some inputs already chosen (`preset`): a form for the rest, or, when nothing else is
   required, at once (a danger action without a form asks first). `oneClick`: skip optional inputs too. */
function start(action, { preset = {}, title = "", oneClick = false } = {}) {
  const rest = (action.inputs || []).filter((i) => !(i.name in preset));
  if (!rest.length || (oneClick && !rest.some((i) => i.required))) {
    if (action.danger && !window.confirm(t("confirm"))) return;
    return act(action, { fields: { ...(action.fields || {}), ...preset }, files: [] });
  }
  const form = actionForm(action, { preset, title, onSubmit: (values) => act(action, values), onCancel: closeForm });
  $("d-form").replaceChildren(form);
  $("d-form").hidden = false;
  const first = form.querySelector("textarea, input, select");
  if (first) first.focus();
}

function renderActions(p) {
  closeForm();
  // Actions that need a team are offered on each ranked team (loadCandidates), not here.
  const here = (p.actions || []).filter((a) => !inputOf(a, "team"));
  $("d-actions").replaceChildren(...here.map((a) => actionButton(a, () => start(a))));
}

async function act(action, { fields, files }) {
  // If-Match: the version this desk saw (the API refuses a dispatch of a case that changed meanwhile).
  const r = await api(`/api/cases/${current.id}/${action.path}/`, {
    method: "POST",
    body: actionBody(fields, files),
    headers: { "If-Match": `"${current.version}"` },
  });
  if (!r.ok) return say($("d-msg"), r.message, "error");
  current.version = r.data.properties.version;
  showCase(r.data);
  say($("d-msg"), t("done"), "ok");
  loadQueue();
}

/* --- the team picker: the ranked candidates, shown when an allowed action needs a team --- */

async function loadCandidates(f) {
  const p = f.properties;
  const teamActions = actionsWith(p, "team");
  $("d-cands-box").hidden = !teamActions.length;
  $("d-cands").replaceChildren();
  if (!teamActions.length) return;
  const [lon, lat] = f.geometry.coordinates;
  const r = await api(`/api/cases/${current.id}/candidates/`);
  const list = r.ok ? r.data.results || r.data.candidates || r.data : [];
  if (!Array.isArray(list) || !list.length) {
    // No ranking available: every visible team, so a case can still go out.
    const teams = await api("/api/teams/?page_size=500");
    const items = teams.ok ? teams.data.features.map((tf) => ({ team: { id: tf.id, name: tf.properties.name, code: tf.properties.code }, reasons: [], geometry: tf.geometry })) : [];
    return renderCandidates(items, teamActions, lat, lon, t("no_candidates"));
  }
  // The ranking names teams; their last positions (to draw them) come from the team list.
  const positions = await teamPositions();
  renderCandidates(
    list.map((c) => ({ ...c, position: c.position || positions.get(c.team.id) })),
    teamActions,
    lat,
    lon,
    "",
  );
}
let positionsCache = null;
async function teamPositions() {
  if (!positionsCache || Date.now() - positionsCache.at > 30000) {
    const r = await api("/api/teams/?page_size=500");
    const positions = new Map(r.ok ? r.data.features.filter((f) => f.geometry).map((f) => [f.id, f.geometry]) : []);
    positionsCache = { at: Date.now(), positions };
  }
  return positionsCache.positions;
}

function renderCandidates(list, teamActions, lat, lon, note) {
  const items = list.map((c, i) => {
    const pos = c.position || (c.team && c.team.position) || c.geometry;
    if (pos && pos.coordinates && i < 5) {
      const [tl, ta] = pos.coordinates;
      L.polyline([[lat, lon], [ta, tl]], { color: i === 0 ? "#27ae60" : "#2e86de", weight: i === 0 ? 4 : 2, dashArray: i ? "4 6" : null }).addTo(overlay);
      L.marker([ta, tl], { icon: L.divIcon({ className: "", html: `<div class="gm-team">${i + 1}. ${c.team.name}</div>`, iconSize: null }) }).addTo(overlay);
    }
    const facts = [c.distance_m !== undefined && c.distance_m !== null ? `${Math.round(c.distance_m)} m` : null, c.workload !== undefined ? `${c.workload}` : null].filter(Boolean).join(" · ");
    return h(
      "li",
      { "data-team": c.team.code },
      h("strong", { text: `${i + 1}. ${c.team.name}` + (c.score !== undefined ? ` (${Number(c.score).toFixed(2)})` : "") }),
      facts ? h("span", { class: "gm-muted", text: facts }) : null,
      c.reasons && c.reasons.length ? h("ul", { class: "gm-reasons" }, c.reasons.map((x) => h("li", { text: x }))) : null,
      h(
        "div",
        { class: "gm-actions" },
        teamActions.map((a) =>
          // One click sends a team when nothing else is required; otherwise a form asks for the rest.
          actionButton(a, () => start(a, { preset: { [inputOf(a, "team").name]: c.team.id }, title: `${actionLabel(a)} → ${c.team.name}`, oneClick: true })),
        ),
      ),
    );
  });
  $("d-cands").replaceChildren(...(note ? [h("li", { class: "gm-muted", text: note })] : []), ...items);
}

/* --- duplicates nearby: an action that needs a case (merge) is offered on each --- */

async function loadDuplicates(f) {
  const p = f.properties;
  const [lon, lat] = f.geometry.coordinates;
  const code = p.category && p.category.code;
  const caseActions = actionsWith(p, "case");
  const r = await api(`/api/duplicates/?${new URLSearchParams({ category: code || "", lon, lat })}`);
  const raw = r.ok ? r.data.features || r.data.results || r.data : [];
  const items = (Array.isArray(raw) ? raw : []).map((d) => ({ geometry: d.geometry, ...(d.properties || d), id: d.id ?? (d.properties || d).id })).filter((d) => d.code !== p.code);
  if (!items.length) return $("d-dups").replaceChildren(h("li", { class: "gm-muted", text: "—" }));
  $("d-dups").replaceChildren(
    ...items.slice(0, 8).map((d) => {
      if (d.geometry && d.geometry.coordinates) L.circleMarker([d.geometry.coordinates[1], d.geometry.coordinates[0]], { radius: 7, color: "#f39c12" }).addTo(overlay);
      return h(
        "li",
        { "data-case": d.code },
        h("span", { text: `${d.code} · ${d.status_label || d.status || ""}` + (d.distance_m !== undefined ? ` · ${Math.round(d.distance_m)} m` : "") }),
        caseActions.map((a) => actionButton(a, () => start(a, { preset: { [inputOf(a, "case").name]: d.code }, title: `${actionLabel(a)} → ${d.code}` }))),
      );
    }),
  );
}

/* --- street loudspeakers: the speakers in/near the case's cell on the map, and the call form (shown when the
   server says this user may call about this case now: `speaker_call`) --- */

const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
async function loadSpeakers(f) {
  const p = f.properties;
  const id = current.id;
  $("d-speakers-box").hidden = !p.speaker_call;
  $("d-speakers").replaceChildren();
  if (!p.speaker_call) return;
  const r = await api(`/api/cases/${id}/speakers/`);
  if (!current || current.id !== id) return; // another case was picked meanwhile
  const near = r.ok ? r.data.features : [];
  for (const s of near) {
    const [lon, lat] = s.geometry.coordinates;
    const html = `<div class="gm-spk" data-speaker="${esc(s.properties.code)}" title="${esc(s.properties.name)}"></div>`;
    L.marker([lat, lon], { icon: L.divIcon({ className: "", html, iconSize: null }), keyboard: false }).addTo(overlay);
  }
  const targets = near.length
    ? [
        { label: t("speaker_all_near", { n: near.length }), body: {} },
        ...near.map((s) => ({ label: `${s.properties.name} · ${Math.round(s.properties.distance_m)} m`, body: { speaker: s.id } })),
      ]
    : [];
  const code = p.category && p.category.code;
  const preset = speakerConfig.presets.some((x) => x.code === code) ? code : "";
  $("d-speakers").replaceChildren(speakerForm({ targets, base: { case: id }, preset, onSent: () => loadTimeline(id) }));
}

async function loadTimeline(id) {
  const r = await api(`/api/cases/${id}/events/?page_size=200`);
  if (!r.ok) return;
  $("d-timeline").replaceChildren(
    ...(r.data.results || []).map((e) =>
      h("li", { "data-type": e.type }, h("time", { text: timeText(e.at) }), h("span", { text: `${e.type_label}${e.actor ? " · " + e.actor : ""}${e.note ? " · " + e.note : ""}` })),
    ),
  );
}

loadQueue();
setInterval(loadQueue, 20000);
document.addEventListener("gm:cases-changed", () => (loadQueue(), current && select(current.id))); // desk_actions.js
document.addEventListener("gm:open-case", (e) => select(e.detail)); // desk_actions.js: a case of the urge ledger

/* The user's notifications (a send-back, an escalation…): badge and list on the feed; a line opens its case
   here. ?case=<id> (a line followed from another face) opens that case. */
const box = inbox({ onOpen: (n) => (select(n.case_id), true) });
if (box) {
  new RealtimeClient({
    scopes: [box.scope],
    onSnapshot: () => box.load(),
    onEvents: (_scope, events) => {
      box.apply(events);
      loadQueue(); // a case came back or moved up: the queue shows it now
    },
  }).connect();
}
const asked = new URLSearchParams(location.search).get("case");
if (asked && /^[0-9]+$/.test(asked)) select(Number(asked));
