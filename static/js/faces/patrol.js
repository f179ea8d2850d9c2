/* /patrol/: a patrol officer's phone. Reports and task actions go through one queue in IndexedDB: each
   entry carries its idempotency key from the moment it is made, is sent in order when the network is
   there, stays queued on a network failure or a 5xx, and is marked failed (with the server's reason) on
   a 4xx. The list of what waits and what failed is always on screen.
   A phone is shared: each entry carries the id of the user who made it, and only that user's session
   sends it (another user's entries are listed as held, never sent under someone else's name). Logging out
   shows what of one's own is still unsent and clears it, or stays logged in to send it first.
   A task's buttons are its `actions` as the server sends them (gridmgmt.rules): this page holds no role and
   no status table; an action with inputs opens a small form for them (photos, note, hours…). */
import { RealtimeClient } from "../realtime.js";
import { actionButton, actionForm, actionLabel, api, config, countdown, exifGps, gps, h, locationPin, map, photoProblem, photosReady, say, states, store, t, timeText, uuid } from "./common.js";
import { alerts, inbox } from "./inbox.js";

const $ = (id) => document.getElementById(id);
const me = config.user || {};
const mine = (entry) => me.id !== undefined && me.id !== null && entry.user === me.id;
let photos = []; // the report's photos, shrunk (common.js photosReady)
let here = null; // last known position {lat, lon}
let flushing = false;
let retrySoon = null; // the timer of a quick second try after a failure while online
const taskLayer = L.layerGroup().addTo(map());

/* --- tabs and network state --- */
const tabs = ["report", "tasks", "queue"];
function show(name) {
  for (const n of tabs) {
    $(`tab-${n}`).setAttribute("aria-selected", String(n === name));
    $(`panel-${n}`).hidden = n !== name;
  }
  if (name === "tasks") loadTasks();
}
tabs.forEach((n) => $(`tab-${n}`).addEventListener("click", () => show(n)));
function netState() {
  const online = navigator.onLine;
  $("net").dataset.online = String(online);
  $("net").textContent = online ? t("online") : t("offline") + " · " + t("queued");
  if (online) flush();
}
window.addEventListener("online", netState);
window.addEventListener("offline", netState);

/* --- location: phone GPS, else the photo's EXIF, else the pin on the map --- */
let accuracy = null;
const pin = locationPin((latlng, how) => {
  here = { lat: latlng.lat, lon: latlng.lng, how };
  say($("loc-status"), how === "gps" ? t("located_gps", { m: accuracy ?? "?" }) : t(how === "exif" ? "located_exif" : "located_pin"));
});
async function locate() {
  say($("loc-status"), t("locating"));
  const p = await gps();
  if (p) {
    accuracy = Math.round(p.accuracy);
    return pin.place(L.latLng(p.lat, p.lon), "gps", true);
  }
  const e = null; // the photos' EXIF position is read when they are picked
  if (e) return pin.place(L.latLng(e.lat, e.lon), "exif", true);
  say($("loc-status"), t("gps_failed"), "warn");
}
$("locate").addEventListener("click", locate);
if (navigator.geolocation) {
  // Keep the position fresh while the page is open (actions carry it as where they happened).
  navigator.geolocation.watchPosition(
    (p) => {
      accuracy = Math.round(p.coords.accuracy);
      if (!here || here.how === "gps") pin.place(L.latLng(p.coords.latitude, p.coords.longitude), "gps", !here);
    },
    () => {},
    { enableHighAccuracy: true, maximumAge: 10000 },
  );
}

/* --- category picker with search --- */
const categories = config.categories || [];
function fillCategories(q) {
  const query = (q || "").trim().toLowerCase();
  const hit = categories.filter((c) => !query || `${c.code} ${c.name} ${c.plain} ${c.major}`.toLowerCase().includes(query));
  const keep = $("category").value;
  $("category").replaceChildren(...hit.map((c) => h("option", { value: c.code, text: `${c.name}(${c.major})` })));
  if (hit.some((c) => c.code === keep)) $("category").value = keep;
  else if (hit.length === 1) $("category").value = hit[0].code;
}
$("category-search").addEventListener("input", (e) => fillCategories(e.target.value));
fillCategories("");

$("photo").addEventListener("change", async (e) => {
  const picked = [...e.target.files];
  // The position is read from the original (shrinking drops EXIF) before the photos are shrunk.
  const ex = !here && picked.length ? await exifGps(picked[0]) : null;
  const ready = await photosReady(picked);
  if (ready.problem) {
    $("photo").value = "";
    return say($("msg"), ready.problem, "error");
  }
  photos = ready.files;
  $("photo-previews").replaceChildren(...photos.map((f, i) => h("img", { class: "gm-preview", src: URL.createObjectURL(f), alt: t("photo_alt", { kind: "", n: i + 1 }) })));
  $("photo-previews").hidden = !photos.length;
  say($("photo-count"), photos.length > 1 ? t("photos_picked", { n: photos.length }) : "");
  say($("msg"), "");
  if (ex) pin.place(L.latLng(ex.lat, ex.lon), "exif", true);
});

/* --- the queue ---
   An entry records when and where it was made (`created`, `where`): an action sends that time as
   `occurred_at`, which the server takes (bounded by its clock) as when the work was done. Its state is
   "queued" (waiting), "sent" (kept a day so the list says what happened) or "failed" (with the server's
   reason). A replay of a request the server had already applied comes back as that request's answer (the
   idempotency key), so an answer lost on the way is still "sent". */
const SENT_KEEP_MS = 24 * 3600 * 1000;
const unsent = (e) => e.state !== "sent";
async function enqueue(entry) {
  entry = {
    key: uuid(),
    state: "queued",
    error: "",
    created: new Date().toISOString(),
    where: here ? { lat: here.lat, lon: here.lon } : null,
    files: [],
    ...entry,
    user: me.id,
  };
  entry.fields = { ...entry.fields, occurred_at: entry.created }; // when it was done, for the server's clocks
  await store.put("queue", entry);
  await renderQueue();
  flush();
}
/* The same action on the same case already waiting (a second tap while offline): not queued twice. */
async function queuedAlready(url) {
  return (await store.all("queue")).some((e) => mine(e) && e.kind === "action" && e.url === url && e.state === "queued");
}

function formOf(entry) {
  const body = new FormData();
  for (const [k, v] of Object.entries(entry.fields || {})) if (v !== null && v !== undefined) body.append(k, v);
  for (const f of entry.files) body.append(f.field, f.blob, f.name);
  body.append("idempotency_key", entry.key);
  return body;
}

async function flush() {
  if (flushing) return;
  flushing = true;
  let sent = 0;
  try {
    // Only this user's entries: another officer's report is never sent under this session's name.
    const entries = (await store.all("queue")).filter((e) => e.state === "queued" && mine(e));
    for (const entry of entries) {
      const r = await api(entry.url, { method: "POST", body: formOf(entry), headers: { "Idempotency-Key": entry.key } });
      sent += 1;
      if (r.ok) {
        entry.state = "sent";
        entry.error = "";
        entry.sent = new Date().toISOString();
        await store.put("queue", entry);
        await renderQueue(); // the task's "waiting" line goes before its detail is redrawn
        if (entry.kind === "action") actionDone(entry, r.data);
      } else if (r.network || r.status >= 500 || r.status === 429) {
        entry.error = r.message;
        await store.put("queue", entry);
        // Try again when the network or the server is back (the online event, the 15 s timer); a failure while
        // the phone says it is online (an answer lost, a server restarting) soon, once.
        if (navigator.onLine && !retrySoon) retrySoon = setTimeout(() => ((retrySoon = null), flush()), 2000);
        break; // keep the order
      } else {
        entry.state = "failed";
        entry.error = r.message;
        await store.put("queue", entry);
        if (entry.kind === "action") actionRefused(entry);
      }
    }
  } finally {
    flushing = false;
    await renderQueue();
    if (sent && navigator.onLine) loadTasks(); // what was just done shows in the list
  }
}

const STATE_WORDS = { queued: "waiting", sent: "sent", failed: "failed" };
let waitingByCase = new Map(); // case id → the labels of this user's actions on it still waiting (task detail)
async function renderQueue() {
  let entries = await store.all("queue");
  // What was sent stays listed for a day, then goes.
  const old = entries.filter((e) => e.state === "sent" && Date.now() - new Date(e.sent).getTime() > SENT_KEEP_MS);
  for (const e of old) await store.del("queue", e.id);
  entries = entries.filter((e) => !old.includes(e));
  const own = entries.filter(mine).sort((a, b) => b.id - a.id); // newest first
  const waiting = own.filter(unsent).length;
  waitingByCase = new Map();
  for (const e of own.filter((x) => x.kind === "action" && x.state === "queued").reverse()) {
    waitingByCase.set(e.caseId, [...(waitingByCase.get(e.caseId) || []), e.label.split(" · ")[0]]);
  }
  $("queue-count").textContent = String(waiting);
  $("queue-count").hidden = !waiting;
  $("queue").replaceChildren(
    ...own.map((e) =>
      h(
        "li",
        { "data-state": e.state, "data-key": e.key },
        h("span", { class: "gm-queue-head" }, h("strong", { text: e.label }), h("span", { class: "gm-queue-state", "data-state": e.state, text: t(STATE_WORDS[e.state] || "waiting") })),
        h(
          "span",
          { class: "gm-muted" },
          [t("made_at", { time: timeText(e.created) }), e.where ? t("made_where", { lat: e.where.lat.toFixed(5), lon: e.where.lon.toFixed(5) }) : "", e.sent ? t("sent_at", { time: timeText(e.sent) }) : ""].filter(Boolean).join(" · "),
        ),
        e.error && e.state !== "sent" ? h("span", { class: e.state === "failed" ? "gm-error" : "gm-muted", text: e.error }) : null,
        e.state === "failed"
          ? h(
              "div",
              { class: "gm-actions" },
              h("button", { type: "button", class: "gm-secondary", text: t("retry"), onclick: () => retry(e) }),
              h("button", { type: "button", class: "gm-secondary", text: t("discard"), onclick: () => discard(e) }),
            )
          : null,
      ),
    ),
    // Left by another user who did not log out here: held, not sent; only that user's session sends them.
    ...entries
      .filter((e) => !mine(e))
      .map((e) =>
        h(
          "li",
          { "data-state": "foreign", "data-key": e.key },
          h("strong", { text: e.label }),
          h("span", { class: "gm-muted", text: `${timeText(e.created)} · ${t("queue_foreign")}` }),
          h("div", { class: "gm-actions" }, h("button", { type: "button", class: "gm-secondary", text: t("discard"), onclick: () => discard(e) })),
        ),
      ),
  );
}
async function retry(e) {
  e.state = "queued";
  e.error = "";
  await store.put("queue", e);
  flush();
}
async function discard(e) {
  await store.del("queue", e.id);
  renderQueue();
}

/* --- logout: what of mine is unsent is shown, then cleared (or the officer stays to send it first) --- */
const logoutForm = document.querySelector("form.gm-logout");
if (logoutForm) {
  logoutForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const own = (await store.all("queue")).filter(mine);
    const left = own.filter(unsent);
    if (left.length) {
      const list = left.map((e) => `• ${e.label} (${e.state === "failed" ? t("failed") : t("queued")})`).join("\n");
      if (!window.confirm(`${t("logout_loses", { n: left.length })}\n${list}`)) return;
    }
    for (const e of own) await store.del("queue", e.id);
    logoutForm.submit(); // submit() fires no submit event: no loop
  });
}

/* --- report --- */
$("report-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const code = $("category").value;
  let problem = photos.length ? "" : photoProblem(null);
  if (!problem && !here) problem = t("location_required");
  if (!problem && !code) problem = t("category_required");
  if (problem) return say($("msg"), problem, "error");
  const cat = categories.find((c) => c.code === code);
  const entry = {
    kind: "report",
    label: `${cat ? cat.name : code} · ${here.lat.toFixed(5)}, ${here.lon.toFixed(5)}`,
    url: "/api/cases/",
    fields: { category: code, lon: here.lon.toFixed(7), lat: here.lat.toFixed(7), description: $("note").value },
    files: photos.map((p) => ({ field: "photos", name: p.name || "photo.jpg", blob: p })),
  };
  // Clear the form before the first await: an officer who picks the next photo while IndexedDB is
  // still writing must not have it wiped by this report's reset. The location stays (still there).
  photos = [];
  $("photo").value = "";
  $("photo-previews").hidden = true;
  $("photo-previews").replaceChildren();
  say($("photo-count"), "");
  $("note").value = "";
  await enqueue(entry);
  say($("msg"), navigator.onLine ? t("submitting") : t("queued"), "ok");
});

/* --- my tasks: a list to choose from, a task's detail to work on ---
   A line says what and where (category, address or cell, the description's start) and how much time is
   left (the light as the server computed it, with its words, and a countdown); a tap opens the detail:
   description, photos, address and cell, the category's handling standard, navigation links, the actions
   the server allows and the case's timeline. The map shows the task and the officer's position. */
const PAGE_SIZE_MAX = 500; // gridmgmt/api/pagination.py FeaturePagination.max_page_size
// The light's colour on the map (the light itself, and its words, come from the server).
const LIGHT_COLOURS = { red: "#c0392b", yellow: "#e67e22", green: "#27ae60", none: "#2e86de" };
const TASKS_KEPT = "patrol:tasks"; // the last task list read, for a reload offline (IndexedDB drafts)
const taskKept = (id) => `patrol:task:${id}`; // the last detail read of a task
let tasksLoading = false;
let tasksAgain = false; // a reason to read again arrived while a read was running (it may predate the change)
let taskList = []; // the features last read
let fitted = false; // the map has been fitted on the tasks once
let openId = null; // the task whose detail is open
let openFeature = null;
let openEvents = null;
let taskPin = null;
async function loadTasks() {
  if (tasksLoading) {
    tasksAgain = true;
    return;
  }
  tasksLoading = true;
  tasksAgain = false;
  const statuses = config.tasks; // the statuses a field action starts from, as the server says
  // The API pages with page/page_size (at most PAGE_SIZE_MAX a page): follow `next` to the last page.
  const features = [];
  let url = `/api/cases/?status=${statuses}&page_size=${PAGE_SIZE_MAX}`;
  let r = null;
  while (url) {
    r = await api(url);
    if (!r.ok) break;
    features.push(...(r.data.features || []));
    const next = r.data.next && new URL(r.data.next, location.href);
    url = next ? next.pathname + next.search : null; // same origin even behind a proxy
  }
  tasksLoading = false;
  if (tasksAgain) setTimeout(loadTasks, 0);
  let tasks = features; // my team's cases and my own reports, in the statuses a field action starts from
  if (!r.ok) {
    // Offline (or the server away): the list as last read on this phone, said to be that.
    const kept = r.network && (await store.get("drafts", TASKS_KEPT));
    if (!kept || kept.user !== me.id) return say($("tasks-msg"), r.message, r.network ? "warn" : "error");
    say($("tasks-msg"), t("tasks_offline", { time: timeText(kept.at) }), "warn");
    tasks = kept.features;
  } else {
    say($("tasks-msg"), "");
    store.put("drafts", { user: me.id, at: new Date().toISOString(), features }, TASKS_KEPT);
  }
  taskList = tasks;
  $("task-count").textContent = String(tasks.length);
  $("task-count").hidden = !tasks.length;
  taskLayer.clearLayers();
  if (!tasks.length) {
    $("tasks").replaceChildren(h("li", { class: "gm-muted", text: t("no_tasks") }));
    return;
  }
  tasks.sort((a, b) => (a.properties.deadline_at || "9").localeCompare(b.properties.deadline_at || "9"));
  $("tasks").replaceChildren(...tasks.map(taskItem));
  highlight();
  if (!fitted && !openId && !$("panel-tasks").hidden) {
    fitted = true;
    fitOn(tasks.map((f) => latLngOf(f)));
  }
}

const latLngOf = (f) => L.latLng(f.geometry.coordinates[1], f.geometry.coordinates[0]);
const idOf = (f) => f.id ?? f.properties.id;
const lightLabel = (light) => (states.lightLabels || {})[light] || "";
const worker = () => (here && here.how === "gps" ? L.latLng(here.lat, here.lon) : null);

/* The map on these points and the officer's position (one point alone: close in on it). */
function fitOn(points) {
  const m = map();
  m.invalidateSize();
  const all = [...points, worker()].filter(Boolean);
  if (!all.length) return;
  if (all.length === 1) m.setView(all[0], 17);
  else m.fitBounds(L.latLngBounds(all), { padding: [48, 48], maxZoom: 17 });
}

/* A task asked for by its code (?case= from a notification's line): the task list, scrolled to it; the mark
   stays through the list's later re-renders. */
let wanted = new URLSearchParams(location.search).get("case");
let scrolled = false;
function highlight() {
  if (!wanted) return;
  const li = [...document.querySelectorAll("#tasks li[data-case]")].find((n) => n.dataset.case === wanted);
  if (!li) return;
  document.querySelectorAll("#tasks li[aria-current]").forEach((n) => n.removeAttribute("aria-current"));
  li.setAttribute("aria-current", "true");
  if (!scrolled) li.scrollIntoView({ block: "nearest" });
  scrolled = true;
}
function openTask(code) {
  wanted = code;
  scrolled = false;
  closeTask();
  show("tasks");
  highlight();
  return true;
}

function lightBadge(p) {
  return h("span", { class: "gm-light", "data-light": p.light, text: lightLabel(p.light) });
}
function clock(p) {
  return p.deadline_at ? h("span", { class: "gm-countdown", "data-deadline": p.deadline_at, text: countdown(p.deadline_at) }) : null;
}
const whereText = (p) => p.address || t("cell_only", { cell: p.cell });

function taskItem(f) {
  const p = f.properties;
  const id = idOf(f);
  L.circleMarker(latLngOf(f), { radius: 8, color: LIGHT_COLOURS[p.light] || LIGHT_COLOURS.none, fillOpacity: 0.7 })
    .bindTooltip(`${p.category ? p.category.label : ""} ${p.code}`)
    .on("click", () => openTaskDetail(id))
    .addTo(taskLayer);
  return h(
    "li",
    { "data-light": p.light, "data-case": p.code, "data-id": String(id) },
    h(
      "button",
      // No aria-label: the visible lines (category, light, place, summary, status and code) are the button's name.
      { type: "button", class: "gm-task-open", onclick: () => openTaskDetail(id) },
      h("span", { class: "gm-task-head" }, h("strong", { text: p.category ? p.category.label || p.category.name : p.code }), lightBadge(p)),
      h("span", { class: "gm-task-where", text: whereText(p) }),
      h("span", { class: p.summary ? "gm-task-summary" : "gm-task-summary gm-muted", text: p.summary || t("no_description") }),
      h("span", { class: "gm-task-foot" }, h("span", { class: "gm-muted", text: `${p.status_label} · ${p.code}` }), clock(p)),
    ),
  );
}

/* --- one task's detail --- */
function closeTask() {
  openId = null;
  openFeature = null;
  openEvents = null;
  $("task").hidden = true;
  $("task").replaceChildren();
  $("tasks").hidden = false;
  $("tasks-hint").hidden = false;
  if (taskPin) taskPin.remove();
  taskPin = null;
  fitted = false; // back on the list: the map shows the tasks again on its next read
}

async function openTaskDetail(id) {
  openId = id;
  const listed = taskList.find((f) => idOf(f) === id);
  openFeature = listed || null;
  openEvents = null;
  $("tasks").hidden = true;
  $("tasks-hint").hidden = true;
  $("task").hidden = false;
  if (listed) renderTask(listed, { loading: true });
  $("task").scrollIntoView({ block: "start" });
  if (listed) focusTask(listed);
  let [r, ev] = await Promise.all([api(`/api/cases/${id}/`), api(`/api/cases/${id}/events/?page_size=200`)]);
  if (openId !== id) return; // another task was opened meanwhile
  if (r.ok) store.put("drafts", { user: me.id, feature: r.data, events: ev.ok ? ev.data : null }, taskKept(id));
  else if (r.network) {
    const kept = await store.get("drafts", taskKept(id));
    if (kept && kept.user === me.id && openId === id) {
      r = { ok: true, data: kept.feature };
      ev = { ok: !!kept.events, data: kept.events };
    }
  }
  if (!r.ok) {
    if (!listed) $("task").replaceChildren(backButton());
    return say($("task-msg") || $("tasks-msg"), r.message, r.network ? "warn" : "error");
  }
  openFeature = r.data;
  openEvents = ev.ok ? ev.data.results || [] : null;
  renderTask(openFeature);
  if (!listed) focusTask(openFeature);
}

function focusTask(f) {
  const at = latLngOf(f);
  if (!taskPin) taskPin = L.circleMarker(at, { radius: 13, color: "#c0392b", weight: 4, fillOpacity: 0.25 }).addTo(map());
  else taskPin.setLatLng(at);
  taskPin.bindTooltip(f.properties.code, { permanent: false });
  fitOn([at]);
}

function backButton() {
  return h("button", { type: "button", id: "task-back", class: "gm-secondary gm-back", text: `‹ ${t("task_back")}`, onclick: () => (closeTask(), loadTasks()) });
}

function section(title, ...body) {
  return h("section", { class: "gm-task-part" }, h("h3", { text: title }), ...body);
}

function photoThumbs(photos) {
  return h(
    "div",
    { class: "gm-thumbs" },
    photos.map((photo, i) =>
      h(
        "button",
        { type: "button", class: "gm-thumb-open", "data-kind": photo.kind, onclick: () => viewPhoto(photo) },
        h("img", { src: photo.url, alt: t("photo_alt", { kind: photo.kind_label || "", n: i + 1 }), loading: "lazy" }),
        h("span", { text: photo.kind_label || "" }),
      ),
    ),
  );
}
function viewPhoto(photo) {
  const dialog = $("photo-view");
  $("photo-full").src = photo.url;
  $("photo-full").alt = photo.kind_label || "";
  $("photo-caption").textContent = `${photo.kind_label || ""} · ${timeText(photo.created_at)}`;
  if (dialog.showModal) dialog.showModal();
  else dialog.setAttribute("open", "");
}
$("photo-close").addEventListener("click", () => $("photo-view").close());
$("photo-view").addEventListener("click", (e) => e.target === $("photo-view") && $("photo-view").close());

function timeline(events) {
  if (events === null) return h("p", { class: "gm-muted", text: t("task_loading") });
  if (!events.length) return h("p", { class: "gm-muted", text: "—" });
  const labels = states.labels || {};
  return h(
    "ol",
    { class: "gm-timeline" },
    events.map((e) =>
      h(
        "li",
        { "data-type": e.type },
        h("time", { datetime: e.at, text: timeText(e.at) }),
        h(
          "div",
          {},
          h("strong", { text: e.type_label }),
          e.to_status && e.to_status !== e.from_status ? h("span", { class: "gm-muted", text: ` → ${labels[e.to_status] || e.to_status}` }) : null,
          e.actor ? h("span", { class: "gm-muted", text: ` · ${e.actor}` }) : null,
        ),
        e.note ? h("p", { class: "gm-note", text: e.note }) : null,
        (e.photos || []).length ? photoThumbs(e.photos) : null,
      ),
    ),
  );
}

function renderTask(f, { loading = false } = {}) {
  const p = f.properties;
  const id = idOf(f);
  const detail = "description" in p; // the list's shape until the detail arrives
  const msg = h("p", { id: "task-msg", class: "gm-msg", role: "alert", hidden: true });
  const form = h("div", { id: "task-form", class: "gm-form", hidden: true });
  const buttons = h("div", { id: "task-actions", class: "gm-actions" });
  const where = () => (here ? { lon: here.lon.toFixed(7), lat: here.lat.toFixed(7) } : {});
  // Queued like a report: the request to replay (url, fields, files) with its own idempotency key, and the
  // words to show once the server has taken it (the action's `done`).
  const act = async (action, { fields, files }) => {
    const url = `/api/cases/${id}/${action.path}/`;
    if (await queuedAlready(url)) {
      form.hidden = true;
      say(msg, t("already_queued"), "warn");
      return msg.scrollIntoView({ block: "nearest" });
    }
    form.hidden = true;
    buttons.querySelectorAll("button").forEach((b) => (b.disabled = true));
    say(msg, navigator.onLine ? t("submitting") : t("queued"), navigator.onLine ? "" : "warn");
    await enqueue({
      kind: "action",
      label: `${actionLabel(action)} · ${p.code}`,
      url,
      fields: { ...where(), ...fields },
      files,
      caseId: id,
      code: p.code,
      done: action.done,
    });
    if (action.then && !navigator.onLine && openId === id) {
      // Offline: the task as it will be once the server takes the action — its next actions as the server
      // listed them (`then`: "handle" after "accept"), kept for a reload offline too.
      const next = { ...f, properties: { ...p, actions: action.then } };
      openFeature = next;
      renderTask(next);
      say($("task-msg"), t("queued"), "warn");
      const kept = await store.get("drafts", taskKept(id));
      store.put("drafts", { user: me.id, feature: next, events: kept ? kept.events : null }, taskKept(id));
    }
  };
  for (const action of p.actions || []) {
    buttons.append(
      actionButton(action, () => {
        if (!(action.inputs || []).length) {
          if (action.danger && !window.confirm(t("confirm"))) return;
          return act(action, { fields: { ...(action.fields || {}) }, files: [] });
        }
        form.replaceChildren(
          h("h3", { text: actionLabel(action) }),
          actionForm(action, { submitLabel: t("submit"), onSubmit: (values) => act(action, values), onCancel: () => (form.hidden = true) }),
        );
        form.hidden = false;
        form.scrollIntoView({ block: "nearest" });
      }),
    );
  }
  const photos = p.photos || [];
  $("task").replaceChildren(
    backButton(),
    h(
      "header",
      { class: "gm-task-top", "data-light": p.light },
      h("h2", { id: "task-title", text: p.category ? p.category.label || p.category.name : p.code }),
      h("p", { class: "gm-muted", text: `${p.status_label} · ${p.code}` }),
      h("p", { class: "gm-task-clock" }, lightBadge(p), clock(p)),
    ),
    waitingByCase.has(id) ? h("p", { id: "task-waiting", class: "gm-msg", "data-kind": "warn", text: t("task_waiting", { list: waitingByCase.get(id).join(" · ") }) }) : null,
    msg,
    section(
      t("task_where"),
      h(
        "dl",
        { class: "gm-facts" },
        h("dt", { text: t("address") }),
        h("dd", { id: "task-address", text: p.address || t("no_address") }),
        h("dt", { text: t("cell") }),
        h("dd", { id: "task-cell", text: p.cell || "—" }),
        p.deadline_at ? [h("dt", { text: t("deadline") }), h("dd", { text: timeText(p.deadline_at) })] : null,
        h("dt", { text: t("reported_at") }),
        h("dd", { text: timeText(p.reported_at) }),
      ),
      detail && (p.navigation || []).length
        ? h(
            "div",
            { class: "gm-nav", id: "task-nav" },
            h("span", { class: "gm-nav-title", text: t("navigate") }),
            p.navigation.map((link) => h("a", { class: "gm-nav-link", href: link.href, "data-nav": link.name, text: link.label })),
          )
        : null,
    ),
    section(t("task_description"), h("p", { id: "task-description", text: detail ? p.description || t("no_description") : p.summary || t("task_loading") })),
    section(t("photos"), detail ? (photos.length ? photoThumbs(photos) : h("p", { class: "gm-muted", text: t("no_photos") })) : h("p", { class: "gm-muted", text: t("task_loading") })),
    section(t("task_standard"), h("p", { id: "task-standard", text: detail ? p.closing_condition || t("no_standard") : t("task_loading") })),
    section(t("task_actions"), (p.actions || []).length ? buttons : h("p", { class: "gm-muted", text: t("no_actions") }), form),
    section(t("timeline"), h("div", { id: "task-timeline" }, timeline(loading ? null : openEvents))),
  );
}

/* The server took an action: say so plainly (what was done, what comes next, the case's status now), keep
   it on screen until dismissed, and show the task as it is now; the list then drops it if it is no longer
   a task. */
async function actionDone(entry, data) {
  const p = (data && data.properties) || {};
  $("task-done").replaceChildren(
    h("strong", { text: `✓ ${entry.done || t("done")}` }),
    h("span", { text: `${entry.code || p.code || ""} · ${t("status_now", { status: p.status_label || "" })}` }),
    h(
      "div",
      { class: "gm-actions" },
      openId !== null ? h("button", { type: "button", class: "gm-primary", text: t("task_back"), onclick: () => ($("task-done").hidden = true, closeTask(), loadTasks()) }) : null,
      h("button", { type: "button", class: "gm-secondary", text: t("got_it"), onclick: () => ($("task-done").hidden = true) }),
    ),
  );
  $("task-done").hidden = false;
  if (!$("panel-tasks").hidden) $("task-done").scrollIntoView({ block: "start" });
  if (data && openId === entry.caseId) {
    openFeature = data;
    renderTask(data, { loading: true });
    say($("task-msg"), "");
    const ev = await api(`/api/cases/${entry.caseId}/events/?page_size=200`);
    if (openId === entry.caseId && ev.ok) {
      openEvents = ev.data.results || [];
      $("task-timeline").replaceChildren(timeline(openEvents));
    }
  }
}
function actionRefused(entry) {
  if (openId !== entry.caseId || !$("task-msg")) return;
  say($("task-msg"), t("action_failed", { reason: entry.error }), "error");
  $("task-actions")?.querySelectorAll("button").forEach((b) => (b.disabled = false));
}

setInterval(() => document.querySelectorAll(".gm-countdown").forEach((n) => (n.textContent = countdown(n.dataset.deadline))), 30000);
setInterval(() => navigator.onLine && flush(), 15000);

/* --- live: the team's cases and my notifications on the feed (realtime/PROTOCOL.md) ---
   A `case.*` event of the team reloads the task list at once (a dispatch shows within a second); a slow poll
   stays as the fallback for a feed that is down. A new notification updates the badge, beeps, vibrates and,
   while the page is hidden, shows a system notification. */
const box = inbox({ onNew: (note) => notice(note, `${location.pathname}?case=${encodeURIComponent(note.code)}`), onOpen: (n) => openTask(n.case_code) });
const notice = box ? alerts({ button: $("inbox-alerts"), say: (text) => say($("inbox-msg"), text, "ok") }) : () => {};
const taskScope = config.taskScope;
const scopes = [taskScope, box && box.scope].filter(Boolean);
if (scopes.length) {
  new RealtimeClient({
    scopes,
    onSnapshot: async (scope) => {
      if (box && scope === box.scope) await box.load();
      else await loadTasks();
    },
    onEvents: (scope, events) => {
      if (box && scope === box.scope) {
        box.apply(events);
        loadTasks(); // a notification is about a case: it may be a new or returned task
      } else if (events.some((e) => e.type.startsWith("case."))) loadTasks();
    },
  }).connect();
}
setInterval(() => navigator.onLine && loadTasks(), 60000);
// The team's position for the wall and the dispatch ranking while the page is open (not queued: a
// position is only worth sending while it is fresh).
let lastSent = null;
async function sendPosition() {
  if (!navigator.onLine || !here || here.how !== "gps" || !me.team) return;
  const key = `${here.lon.toFixed(5)},${here.lat.toFixed(5)}`;
  if (key === lastSent) return;
  const r = await api("/realtime/position/", { method: "POST", body: { lon: here.lon, lat: here.lat } });
  if (r.ok) lastSent = key;
}
setInterval(sendPosition, 15000);
setTimeout(sendPosition, 3000);
netState();
renderQueue();
if (wanted) show("tasks");
else loadTasks();
if (!here) locate();
if ("serviceWorker" in navigator && config.serviceWorker) {
  navigator.serviceWorker.register(config.serviceWorker).catch(() => {});
  // The static files this page loaded before the worker controlled it (the first visit): handed over so the
  // next start opens offline too (templates/faces/patrol_sw.js).
  navigator.serviceWorker.ready.then((reg) => {
    const urls = performance.getEntriesByType("resource").map((e) => e.name);
    if (reg.active) reg.active.postMessage({ cache: urls });
  });
}
