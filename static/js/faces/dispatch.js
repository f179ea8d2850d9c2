/* /dispatch/: the queue (server-side: a tab per stage with its count, search, filters, ordering, "load more"),
   one case's photos, place, duplicates nearby and ranked teams on the map with their facts, and the actions the
   server says this user may take on the case now (each case's `actions`, from gridmgmt.rules). This page holds no
   role and no status table: an action that needs a team is offered on each ranked team, one that needs a case on
   each duplicate, the rest as buttons that open a form for their inputs. A refused action shows the server's
   message and changes nothing. The queue follows the desk's scope on the real-time feed (no polling): a change
   reloads what is shown, a new report that fits the queue is pinned at its top at once. */
import { RealtimeClient } from "../realtime.js";
import { actionBody, actionButton, actionForm, actionLabel, api, config, countdown, h, map as leafletMap, say, t, timeText } from "./common.js";
import { inbox } from "./inbox.js";
import { speakerConfig, speakerForm } from "./speakers.js";

const $ = (id) => document.getElementById(id);
const map = leafletMap();
const overlay = L.layerGroup().addTo(map);
const queueLayer = L.layerGroup().addTo(map);
let current = null;
let picking = null; // the case last asked for: a slower answer for an earlier pick is dropped

const inputOf = (action, kind) => (action.inputs || []).find((i) => i.kind === kind);
const actionsWith = (p, kind) => (p.actions || []).filter((a) => inputOf(a, kind));

/* --- the queue: what is asked of the server (tab, search, filters, ordering) and what it answered --- */

const QUEUE_PAGE = 50;
const QUEUE_MAX = 500; // the API's largest page: a refresh re-reads what is shown in one request
const queue = { rows: [], count: 0, pinned: new Map(), seq: 0 };
const tabs = () => [...document.querySelectorAll("#queues [role=tab]")];
const activeTab = () => tabs().find((b) => b.getAttribute("aria-selected") === "true") || tabs()[0];
const filterSelects = () => [...document.querySelectorAll("#queue-filters [data-filter]")];

/* The list's query without the status (the tabs' counts use the same one) and with it. */
function queueParams({ withStatus = true } = {}) {
  const params = new URLSearchParams();
  const text = $("q").value.trim();
  if (text) params.set("search", text);
  for (const sel of filterSelects()) if (sel.value) params.set(sel.dataset.filter, sel.value);
  if (withStatus) {
    params.set("status", activeTab().dataset.statuses);
    params.set("ordering", $("ordering").value);
  }
  return params;
}

/* Read the first `size` cases of the queue (a fresh read replaces the rows; `append` reads the next page). */
async function loadQueue({ append = false, size = QUEUE_PAGE } = {}) {
  const seq = ++queue.seq; // an older answer arriving after a newer request is dropped
  const params = queueParams();
  params.set("page_size", String(size));
  if (append) params.set("page", String(Math.floor(queue.rows.length / QUEUE_PAGE) + 1));
  const r = await api(`/api/cases/?${params}`);
  if (seq !== queue.seq) return;
  if (!r.ok) return say($("queue-msg"), r.message, "error");
  say($("queue-msg"), "");
  // A page boundary can fall inside what is shown (a refresh read 57 rows): a row already shown is not added twice.
  const shown = new Set(queue.rows.map((f) => f.id));
  queue.rows = append ? [...queue.rows, ...r.data.features.filter((f) => !shown.has(f.id))] : r.data.features;
  queue.count = r.data.count;
  for (const f of queue.rows) queue.pinned.delete(f.id);
  renderQueue();
}
/* Everything shown again, as the server has it now (after a feed event or an action). */
const refreshQueue = () => Promise.all([loadQueue({ size: Math.min(QUEUE_MAX, Math.max(QUEUE_PAGE, queue.rows.length)) }), loadCounts()]);
/* A new question (tab, search, filter, ordering): start from the first page, forget pinned arrivals. */
function restartQueue() {
  queue.pinned.clear();
  queue.rows = [];
  $("queue").scrollTop = 0;
  return Promise.all([loadQueue(), loadCounts()]);
}

async function loadCounts() {
  // One read for every tab: the statuses of all of them, counted per status.
  const params = queueParams({ withStatus: false });
  params.set("status", [...new Set(tabs().flatMap((tab) => tab.dataset.statuses.split(",")))].join(","));
  const r = await api(`/api/cases/counts/?${params}`);
  if (!r.ok) return;
  for (const tab of tabs()) {
    const n = tab.dataset.statuses.split(",").reduce((sum, status) => sum + (r.data.by_status[status] || 0), 0);
    tab.querySelector("[data-count]").textContent = String(n);
  }
}

function queueRow(f, { pinned = false } = {}) {
  const p = f.properties;
  const category = (p.category && (p.category.label || p.category.name)) || "";
  const where = p.address || p.cell || "";
  // The row is one button (Enter and Space open it, a screen reader names it); a click anywhere on the row too.
  return h(
    "li",
    { "data-light": p.light, "data-case": p.code, "data-new": pinned ? "true" : null, "aria-current": current && current.id === f.id ? "true" : null, onclick: () => select(f.id) },
    h(
      "button",
      { type: "button", class: "gm-queue-open" },
      h("strong", {}, pinned ? h("span", { class: "gm-new", text: t("queue_new") }) : null, `${category} · ${p.status_label}`),
      h("span", { class: "gm-muted", text: `${p.code} · ${p.source_label}${p.level > 1 ? ` · ${t("queue_level", { level: p.level_label })}` : ""}` }),
      where ? h("span", { class: "gm-queue-where", text: where }) : null,
      p.summary ? h("span", { class: "gm-queue-desc", text: p.summary }) : null,
      // No clock running (parked…): no countdown. The countdown says "overdue" in words; yellow says it too.
      p.deadline_at && p.light !== "none" ? h("span", { class: "gm-queue-clock", text: p.light === "yellow" ? `${config.states.lightLabels.yellow} · ${countdown(p.deadline_at)}` : countdown(p.deadline_at) }) : null,
    ),
  );
}

function renderQueue() {
  queueLayer.clearLayers();
  const pinned = [...queue.pinned.values()];
  for (const f of [...pinned, ...queue.rows]) {
    const [lon, lat] = f.geometry.coordinates;
    L.circleMarker([lat, lon], { radius: 5, color: "#7f8c8d", fillOpacity: 0.6 }).on("click", () => select(f.id)).addTo(queueLayer);
  }
  const rows = [...pinned.map((f) => queueRow(f, { pinned: true })), ...queue.rows.map((f) => queueRow(f))];
  $("queue").replaceChildren(...(rows.length ? rows : [h("li", { class: "gm-muted", text: t("no_cases") })]));
  const shown = queue.rows.length;
  $("queue-count").textContent = queue.count ? t("queue_count", { shown, count: queue.count }) : "";
  // Never hide that there are more: "load more" says how many are left.
  const left = queue.count - shown;
  $("queue-more").hidden = left <= 0;
  $("queue-more").textContent = t("queue_load_more", { n: Math.min(left, QUEUE_PAGE), left });
}

/* A case the feed announces: pinned at the top when it fits this queue's question and is not shown yet. With
   no search or filter set, the envelope's status says whether it belongs to this tab, and it is drawn from the
   envelope at once; the server then answers whether it fits (search, filters, scope) with the full row. */
function envelopeRow(d) {
  const sources = Object.fromEntries((config.filters || {}).source || []);
  return {
    id: d.case_id,
    geometry: { type: "Point", coordinates: [d.lon, d.lat] },
    properties: {
      code: d.code,
      status: d.status,
      status_label: config.states.labels[d.status] || d.status,
      category: { code: d.category, name: d.category_name },
      source_label: sources[d.source] || d.source,
      address: d.address,
      light: d.light || "none",
      deadline_at: d.deadline_at,
      level: d.level,
    },
  };
}
async function pinArrival(d) {
  const caseId = d.case_id;
  if (queue.rows.some((f) => f.id === caseId) || queue.pinned.has(caseId)) return;
  const params = queueParams();
  const plain = [...params.keys()].every((k) => k === "status" || k === "ordering");
  if (plain && activeTab().dataset.statuses.split(",").includes(d.status) && d.lon !== undefined) {
    queue.pinned.set(caseId, envelopeRow(d));
    renderQueue();
  }
  params.set("code", d.code);
  const r = await api(`/api/cases/?${params}`);
  if (!r.ok) return;
  const f = r.data.features.find((x) => x.id === caseId);
  if (f && !queue.rows.some((x) => x.id === caseId)) queue.pinned.set(caseId, f);
  else queue.pinned.delete(caseId);
  renderQueue();
}

function setupQueue() {
  for (const tab of tabs()) {
    tab.addEventListener("click", () => {
      for (const other of tabs()) other.setAttribute("aria-selected", other === tab ? "true" : "false");
      restartQueue();
    });
  }
  const filters = config.filters || {};
  for (const sel of filterSelects()) {
    const choices = filters[sel.dataset.filter] || [];
    sel.replaceChildren(h("option", { value: "", text: t("filter_all") }), ...choices.map(([value, label]) => h("option", { value, text: label })));
    sel.addEventListener("change", () => {
      showFiltersOn();
      restartQueue();
    });
  }
  $("filters-clear").addEventListener("click", () => {
    for (const sel of filterSelects()) sel.value = "";
    showFiltersOn();
    restartQueue();
  });
  $("queue-search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    restartQueue();
  });
  let typing = null;
  $("q").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(restartQueue, 300); // search as one types, once a pause says the word is there
  });
  $("ordering").addEventListener("change", () => {
    syncOverdue();
    restartQueue();
  });
  $("overdue-first").addEventListener("click", () => {
    // "Overdue first": red cases on top, the longest overdue first (ordering=light); again: back to deadlines.
    $("ordering").value = $("ordering").value === "light" ? "deadline" : "light";
    syncOverdue();
    restartQueue();
  });
  $("queue-more").addEventListener("click", () => loadQueue({ append: true }));
}
const syncOverdue = () => $("overdue-first").setAttribute("aria-pressed", $("ordering").value === "light" ? "true" : "false");
function showFiltersOn() {
  const n = filterSelects().filter((sel) => sel.value).length;
  $("filters-on").textContent = n ? t("filters_on", { n }) : "";
}
async function loadTeamFilter() {
  const { teams } = await teamList();
  const sel = document.querySelector('#queue-filters [data-filter="team"]');
  const chosen = sel.value;
  sel.replaceChildren(h("option", { value: "", text: t("filter_all") }), ...teams.map((tm) => h("option", { value: tm.code, text: tm.name })));
  sel.value = chosen;
}

async function select(id) {
  picking = id;
  const r = await api(`/api/cases/${id}/`);
  if (!r.ok) return say($("queue-msg"), r.message, "error");
  if (picking !== null && picking !== id) return; // another case was picked meanwhile
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
  refreshQueue();
}

/* --- the team picker: the ranked candidates, shown when an allowed action needs a team --- */

async function loadCandidates(f) {
  const p = f.properties;
  const id = current.id;
  const teamActions = actionsWith(p, "team");
  // Only while the case can be sent to a team: a handled, closed or already dispatched case shows no ranking.
  $("d-cands-box").hidden = !teamActions.length;
  $("d-cands").replaceChildren();
  $("d-cands-rule").textContent = config.rankingRule || "";
  if (!teamActions.length) return;
  const [lon, lat] = f.geometry.coordinates;
  const r = await api(`/api/cases/${id}/candidates/`);
  if (!current || current.id !== id) return; // another case was picked meanwhile
  const list = r.ok ? r.data.results || [] : [];
  const { teams, positions } = await teamList();
  if (!current || current.id !== id) return;
  if (!list.length) {
    // No ranking available: every visible team, so a case can still go out.
    const items = teams.map((tm) => ({ team: tm, geometry: positions.get(tm.id) }));
    return renderCandidates(items, teamActions, lat, lon, t("no_candidates"));
  }
  // The ranking names teams; their last positions (to draw them) come from the team list.
  renderCandidates(
    list.map((c) => ({ ...c, position: positions.get(c.team.id) })),
    teamActions,
    lat,
    lon,
    "",
  );
}
let teamsCache = null;
/* The visible teams ({id, code, name}) and their last positions, read at most every 30 s. */
async function teamList() {
  if (!teamsCache || Date.now() - teamsCache.at > 30000) {
    const r = await api("/api/teams/?page_size=500");
    const features = r.ok ? r.data.features : [];
    teamsCache = {
      at: Date.now(),
      teams: features.map((tf) => ({ id: tf.id, code: tf.properties.code, name: tf.properties.name })),
      positions: new Map(features.filter((tf) => tf.geometry).map((tf) => [tf.id, tf.geometry])),
    };
  }
  return teamsCache;
}

/* A ranked team's facts, each labelled in words (the score itself is not shown: the rule above says how the
   facts order the teams). */
function teamFacts(c) {
  if (c.workload === undefined) return null;
  const fact = (label, value, kind) => h("div", {}, h("dt", { text: label }), h("dd", { text: value, "data-kind": kind || null }));
  const metres = (m) => (m >= 1000 ? t("fact_km", { km: (m / 1000).toFixed(1) }) : t("fact_metres", { m: Math.round(m) }));
  return h(
    "dl",
    { class: "gm-cand-facts" },
    fact(t("fact_distance"), c.distance_m === null ? t("fact_unknown") : metres(c.distance_m)),
    fact(t("fact_workload"), t("fact_cases", { n: c.workload }), c.workload ? null : "good"),
    fact(t("fact_owner"), c.owns_grid ? t("fact_owner_yes") : t("fact_no"), c.owns_grid ? "good" : "no"),
    fact(t("fact_skill"), c.skill ? t("fact_skill_yes") : t("fact_no"), c.skill ? "good" : "no"),
    c.busy ? fact(t("fact_status"), t("fact_busy"), "warn") : null,
  );
}

function renderCandidates(list, teamActions, lat, lon, note) {
  const items = list.map((c, i) => {
    const pos = c.position || c.geometry;
    if (pos && pos.coordinates && i < 5) {
      const [tl, ta] = pos.coordinates;
      L.polyline([[lat, lon], [ta, tl]], { color: i === 0 ? "#27ae60" : "#2e86de", weight: i === 0 ? 4 : 2, dashArray: i ? "4 6" : null }).addTo(overlay);
      L.marker([ta, tl], { icon: L.divIcon({ className: "", html: `<div class="gm-team">${i + 1}. ${esc(c.team.name)}</div>`, iconSize: null }) }).addTo(overlay);
    }
    return h(
      "li",
      { "data-team": c.team.code },
      h("strong", { text: `${i + 1}. ${c.team.name}` }),
      teamFacts(c),
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

document.addEventListener("gm:cases-changed", () => (refreshQueue(), current && select(current.id))); // desk_actions.js
document.addEventListener("gm:open-case", (e) => select(e.detail)); // desk_actions.js: a case of the urge ledger

/* The feed: the desk's scope keeps the queue, its counts and the open case current (no polling); the user's
   own scope feeds the inbox (a send-back, an escalation…: badge and list; a line opens its case here). */
const box = inbox({ onOpen: (n) => (select(n.case_id), true) });
let refreshing = null;
let currentTouched = false;
function caseEvents(events) {
  for (const e of events) {
    if (e.type === "case.created" && e.data && e.data.case_id) pinArrival(e.data);
  }
  // At most one read of the queue per half second however busy the feed (new reports are pinned at once,
  // above); the open case is read again unless a form is being filled in.
  currentTouched = currentTouched || Boolean(current && events.some((e) => e.data && e.data.case_id === current.id));
  if (refreshing) return;
  refreshing = setTimeout(() => {
    refreshing = null;
    refreshQueue();
    if (currentTouched && current && $("d-form").hidden) select(current.id);
    currentTouched = false;
  }, 500);
}
const scopes = [config.scope, box && box.scope].filter(Boolean);
setupQueue();
loadTeamFilter();
if (scopes.length) {
  new RealtimeClient({
    scopes,
    onSnapshot: (scope) => (scope === config.scope ? refreshQueue() : box.load()),
    onEvents: (scope, events) => {
      if (scope === config.scope) return caseEvents(events.filter((e) => e.type.startsWith("case.")));
      box.apply(events);
    },
  }).connect();
}
restartQueue(); // at once, not only when the feed's snapshot asks (a page whose socket cannot open still works)
const asked = new URLSearchParams(location.search).get("case");
if (asked && /^[0-9]+$/.test(asked)) select(Number(asked));
