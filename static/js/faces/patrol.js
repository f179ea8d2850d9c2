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
import { actionButton, actionForm, actionLabel, api, config, countdown, exifGps, gps, h, locationPin, map, photoProblem, say, store, t, timeText, uuid } from "./common.js";
import { alerts, inbox } from "./inbox.js";

const $ = (id) => document.getElementById(id);
const me = config.user || {};
const mine = (entry) => me.id !== undefined && me.id !== null && entry.user === me.id;
let photo = null;
let here = null; // last known position {lat, lon}
let flushing = false;
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
  const e = photo && (await exifGps(photo));
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
  const file = e.target.files[0];
  const problem = photoProblem(file);
  if (problem) {
    $("photo").value = "";
    return say($("msg"), problem, "error");
  }
  photo = file;
  $("photo-preview").src = URL.createObjectURL(file);
  $("photo-preview").hidden = false;
  say($("msg"), "");
  if (!here) {
    const ex = await exifGps(file);
    if (ex) pin.place(L.latLng(ex.lat, ex.lon), "exif", true);
  }
});

/* --- the queue --- */
async function enqueue(entry) {
  entry = { key: uuid(), state: "queued", error: "", created: new Date().toISOString(), files: [], ...entry, user: me.id };
  await store.put("queue", entry);
  await renderQueue();
  flush();
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
        await store.del("queue", entry.id);
      } else if (r.network || r.status >= 500 || r.status === 429) {
        entry.error = r.message;
        await store.put("queue", entry);
        break; // try again when the network or the server is back; keep the order
      } else {
        entry.state = "failed";
        entry.error = r.message;
        await store.put("queue", entry);
      }
    }
  } finally {
    flushing = false;
    await renderQueue();
    if (sent && navigator.onLine) loadTasks(); // what was just done shows in the list
  }
}

async function renderQueue() {
  const entries = await store.all("queue");
  const own = entries.filter(mine);
  $("queue-count").textContent = String(own.length);
  $("queue-count").hidden = !own.length;
  $("queue").replaceChildren(
    ...own.map((e) =>
      h(
        "li",
        { "data-state": e.state, "data-key": e.key },
        h("strong", { text: e.label }),
        h("span", { class: "gm-muted", text: `${timeText(e.created)} · ${e.state === "failed" ? t("failed") : t("queued")}` }),
        e.error ? h("span", { class: "gm-error", text: e.error }) : null,
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
    const unsent = (await store.all("queue")).filter(mine);
    if (unsent.length) {
      const list = unsent.map((e) => `• ${e.label} (${e.state === "failed" ? t("failed") : t("queued")})`).join("\n");
      if (!window.confirm(`${t("logout_loses", { n: unsent.length })}\n${list}`)) return;
      for (const e of unsent) await store.del("queue", e.id);
    }
    logoutForm.submit(); // submit() fires no submit event: no loop
  });
}

/* --- report --- */
$("report-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const code = $("category").value;
  let problem = photoProblem(photo);
  if (!problem && !here) problem = t("location_required");
  if (!problem && !code) problem = t("category_required");
  if (problem) return say($("msg"), problem, "error");
  const cat = categories.find((c) => c.code === code);
  const entry = {
    kind: "report",
    label: `${cat ? cat.name : code} · ${here.lat.toFixed(5)}, ${here.lon.toFixed(5)}`,
    url: "/api/cases/",
    fields: { category: code, lon: here.lon.toFixed(7), lat: here.lat.toFixed(7), description: $("note").value },
    files: [{ field: "photos", name: photo.name || "photo.jpg", blob: photo }],
  };
  // Clear the form before the first await: an officer who picks the next photo while IndexedDB is
  // still writing must not have it wiped by this report's reset. The location stays (still there).
  photo = null;
  $("photo").value = "";
  $("photo-preview").hidden = true;
  $("note").value = "";
  await enqueue(entry);
  say($("msg"), navigator.onLine ? t("submitting") : t("queued"), "ok");
});

/* --- my tasks --- */
const PAGE_SIZE_MAX = 500; // gridmgmt/api/pagination.py FeaturePagination.max_page_size
let tasksLoading = false;
let tasksAgain = false; // a reason to read again arrived while a read was running (it may predate the change)
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
  if (!r.ok) return say($("tasks-msg"), r.message, r.network ? "warn" : "error");
  say($("tasks-msg"), "");
  // My team's cases and my own reports, in the statuses a field action starts from.
  const tasks = features;
  $("task-count").textContent = String(tasks.length);
  $("task-count").hidden = !tasks.length;
  taskLayer.clearLayers();
  if (!tasks.length) return $("tasks").replaceChildren(h("li", { class: "gm-muted", text: t("no_tasks") }));
  tasks.sort((a, b) => (a.properties.deadline_at || "9").localeCompare(b.properties.deadline_at || "9"));
  $("tasks").replaceChildren(...tasks.map(taskItem));
  highlight();
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
  show("tasks");
  highlight();
  return true;
}

function taskItem(f) {
  const p = f.properties;
  const id = f.id ?? p.id;
  const [lon, lat] = f.geometry.coordinates;
  L.circleMarker([lat, lon], { radius: 8, color: p.light === "red" ? "#c0392b" : "#2e86de", fillOpacity: 0.7 })
    .bindTooltip(p.code)
    .addTo(taskLayer);
  const li = h(
    "li",
    { "data-light": p.light, "data-case": p.code },
    h("strong", { text: `${p.category && (p.category.label || p.category.name)} · ${p.status_label}` }),
    h("span", { class: "gm-muted", text: `${p.code} ${p.address || ""}` }),
    p.deadline_at ? h("span", { class: "gm-countdown", "data-deadline": p.deadline_at, text: countdown(p.deadline_at) }) : null,
  );
  const buttons = h("div", { class: "gm-actions" });
  const extra = h("div", { class: "gm-form", hidden: true });
  const where = () => (here ? { lon: here.lon.toFixed(7), lat: here.lat.toFixed(7) } : {});
  // Queued like a report: the request to replay (url, fields, files) with its own idempotency key.
  const act = (action, { fields, files }) =>
    enqueue({ kind: "action", label: `${actionLabel(action)} · ${p.code}`, url: `/api/cases/${id}/${action.path}/`, fields: { ...where(), ...fields }, files });
  for (const action of p.actions || []) {
    buttons.append(
      actionButton(action, () => {
        if (!(action.inputs || []).length) {
          if (action.danger && !window.confirm(t("confirm"))) return;
          return act(action, { fields: { ...(action.fields || {}) }, files: [] });
        }
        const form = actionForm(action, {
          onSubmit: (values) => {
            extra.hidden = true;
            act(action, values);
          },
          onCancel: () => (extra.hidden = true),
        });
        extra.replaceChildren(form);
        extra.hidden = false;
      }),
    );
  }
  li.append(buttons, extra);
  return li;
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
if ("serviceWorker" in navigator && config.serviceWorker) navigator.serviceWorker.register(config.serviceWorker).catch(() => {});
