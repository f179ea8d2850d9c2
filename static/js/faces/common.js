/* Shared helpers of the faces (an ES module; each page script imports what it uses): config and messages
 from the page, API calls with the CSRF token and one error shape, an IndexedDB store (drafts and the
 offline queue), countdowns, EXIF GPS, photo checks, and the server's description of the case states.
 Nothing here knows a role or a status: what a user may do, and which statuses are open, come from the
 server (the page's config and each case's `actions`). */
const el = document.getElementById("gm-config");
export const config = (el && JSON.parse(el.textContent)) || { messages: {} };
config.messages = config.messages || {};

export function t(key, params) {
  let text = config.messages[key] || key;
  for (const [k, v] of Object.entries(params || {})) text = text.replace(`%(${k})s`, v);
  return text;
}

function cookie(name) {
  const m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
  return m ? decodeURIComponent(m[1]) : "";
}

export function uuid() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return "k" + Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
}

/* fetch → {ok, status, data}. A network failure resolves with status 0 and network: true, so callers
   can tell "keep it and retry later" (network, 5xx) from "the server refused it" (4xx). */
export async function api(url, { method = "GET", body = null, headers = {} } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin" };
  if (method !== "GET") init.headers["X-CSRFToken"] = cookie("csrftoken");
  if (body instanceof FormData) init.body = body;
  else if (body !== null) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    return { ok: false, status: 0, network: true, data: null, message: t("network") };
  }
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  const result = { ok: response.ok, status: response.status, network: false, data };
  if (!response.ok) result.message = errorText(result);
  return result;
}

export function errorText(result) {
  if (result.network) return t("network");
  const d = result.data;
  if (d && typeof d.detail === "string" && d.detail) return d.detail;
  if (result.status >= 500) return t("server", { status: result.status });
  return t("server", { status: result.status });
}

/* --- IndexedDB: two object stores, "drafts" (key → value) and "queue" (auto ids) --- */
let dbPromise = null;
function db() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve, reject) => {
      const req = indexedDB.open("gridmgmt-faces", 1);
      req.onupgradeneeded = () => {
        const d = req.result;
        if (!d.objectStoreNames.contains("drafts")) d.createObjectStore("drafts");
        if (!d.objectStoreNames.contains("queue")) d.createObjectStore("queue", { keyPath: "id", autoIncrement: true });
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  return dbPromise;
}
async function tx(store, mode, fn) {
  const d = await db();
  return new Promise((resolve, reject) => {
    const transaction = d.transaction(store, mode);
    const result = fn(transaction.objectStore(store));
    transaction.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error);
  });
}
export const store = {
  get: (name, key) => tx(name, "readonly", (s) => s.get(key)),
  put: (name, value, key) => tx(name, "readwrite", (s) => (key === undefined ? s.put(value) : s.put(value, key))),
  del: (name, key) => tx(name, "readwrite", (s) => s.delete(key)),
  all: (name) => tx(name, "readonly", (s) => s.getAll()),
};

/* --- time --- */
export function duration(ms) {
  const minutes = Math.round(Math.abs(ms) / 60000);
  if (minutes >= 2 * 24 * 60) return t("days", { n: Math.floor(minutes / 1440) });
  if (minutes >= 120) return t("hours", { n: Math.floor(minutes / 60) });
  return t("minutes", { n: minutes });
}
export function countdown(iso) {
  if (!iso) return "";
  const ms = new Date(iso).getTime() - Date.now();
  return ms < 0 ? t("overdue", { t: duration(ms) }) : t("remaining", { t: duration(ms) });
}
export function timeText(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString(config.lang === "en" ? "en-GB" : "zh-CN", { hour12: false });
}

/* --- photos --- */
// HEIC/HEIF (iPhones): the browser cannot draw it, the server converts it to JPEG (gridmgmt/photos.py).
const HEIC_TYPES = ["image/heic", "image/heif"];
const PHOTO_TYPES = ["image/jpeg", "image/png", "image/webp", ...HEIC_TYPES];
export const PHOTO_EDGE = 2560; // gridmgmt/photos.py MAX_EDGE: what the server would shrink to anyway
export const photoMax = () => config.photoMax || 9; // gridmgmt/photos.py MAX_PHOTOS, from the page's config
export function photoProblem(file) {
  if (!file) return t("photo_required");
  if (file.type && !PHOTO_TYPES.includes(file.type) && !/\.(heic|heif)$/i.test(file.name || "")) return t("photo_type");
  if (file.size > 10 * 1024 * 1024) return t("photo_size");
  return "";
}

/* A photo as it is worth sending: a JPEG no longer than PHOTO_EDGE on its long side, turned upright (a
   50-MB phone shot becomes ~1 MB before it waits in the queue). A JPEG already small enough, a HEIC the
   browser cannot draw, or anything that fails to decode is sent as it is (the server checks and converts). */
export async function photoShrink(file) {
  if (!file || HEIC_TYPES.includes(file.type) || /\.(heic|heif)$/i.test(file.name || "")) return file;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch (err) {
    return file;
  }
  const long = Math.max(bitmap.width, bitmap.height);
  if (file.type === "image/jpeg" && long <= PHOTO_EDGE) {
    bitmap.close();
    return file;
  }
  const scale = Math.min(1, PHOTO_EDGE / long);
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
  if (!blob) return file;
  const name = (file.name || "photo").replace(/\.[^.]*$/, "") + ".jpg";
  return new File([blob], name, { type: "image/jpeg", lastModified: file.lastModified });
}

/* Several photos, each checked and shrunk: {files: [File], problem: ""}; at most photoMax(). */
export async function photosReady(list) {
  const picked = [...(list || [])];
  if (picked.length > photoMax()) return { files: [], problem: t("photo_count", { n: photoMax() }) };
  const files = [];
  for (const file of picked) {
    let problem = photoProblem(file);
    if (problem) return { files: [], problem };
    const small = await photoShrink(file);
    problem = photoProblem(small);
    if (problem) return { files: [], problem };
    files.push(small);
  }
  return { files, problem: "" };
}

/* The GPS position in a JPEG's EXIF (APP1), or null. Enough of TIFF to read GPSLatitude/Longitude. */
export async function exifGps(file) {
  if (!file || file.type !== "image/jpeg") return null;
  const buf = await file.slice(0, 256 * 1024).arrayBuffer();
  const v = new DataView(buf);
  if (v.byteLength < 4 || v.getUint16(0) !== 0xffd8) return null;
  let off = 2;
  while (off + 4 < v.byteLength) {
    const marker = v.getUint16(off);
    const size = v.getUint16(off + 2);
    if (marker === 0xffe1 && v.getUint32(off + 4) === 0x45786966) return readTiff(v, off + 10);
    if ((marker & 0xff00) !== 0xff00) return null;
    off += 2 + size;
  }
  return null;
}
function readTiff(v, start) {
  try {
    const little = v.getUint16(start) === 0x4949;
    const u16 = (o) => v.getUint16(start + o, little);
    const u32 = (o) => v.getUint32(start + o, little);
    const ifd = (o) => {
      const n = u16(o);
      const tags = {};
      for (let i = 0; i < n; i++) {
        const e = o + 2 + i * 12;
        tags[u16(e)] = { type: u16(e + 2), count: u32(e + 4), value: e + 8 };
      }
      return tags;
    };
    const ifd0 = ifd(u32(4));
    if (!ifd0[0x8825]) return null;
    const gps = ifd(u32(ifd0[0x8825].value));
    const rational3 = (tag) => {
      const o = u32(tag.value);
      const r = (i) => u32(o + i * 8) / u32(o + i * 8 + 4);
      return r(0) + r(1) / 60 + r(2) / 3600;
    };
    const ref = (tag) => String.fromCharCode(v.getUint8(start + tag.value));
    if (!gps[2] || !gps[4]) return null;
    let lat = rational3(gps[2]);
    let lon = rational3(gps[4]);
    if (gps[1] && ref(gps[1]) === "S") lat = -lat;
    if (gps[3] && ref(gps[3]) === "W") lon = -lon;
    if (!isFinite(lat) || !isFinite(lon) || (lat === 0 && lon === 0)) return null;
    return { lat, lon };
  } catch (err) {
    return null;
  }
}

/* --- small DOM helpers --- */
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}
export function say(node, text, kind) {
  if (!node) return;
  node.textContent = text || "";
  node.dataset.kind = kind || "";
  node.hidden = !text;
}

/* The map folium made. The one bridge between the generated page and the modules: folium's inline
   (classic) script sets window.gridmgmtMap (geo/folium_offline.py), and it has run before any module does. */
export function map() {
  return window.gridmgmtMap;
}

/* Fit the view on the district outline (folium fits before the page's layout is final). */
export function fitDistrict(padding) {
  const m = map();
  m.invalidateSize();
  let bounds = null;
  m.eachLayer((layer) => {
    if (layer instanceof L.GeoJSON && layer.getBounds().isValid()) bounds = layer.getBounds();
  });
  if (bounds) m.fitBounds(bounds, { padding: [padding || 0, padding || 0] });
}

/* A draggable location pin on the map: set by GPS, EXIF, or a click/drag; calls onChange(latlng, how). */
export function locationPin(onChange) {
  let marker = null;
  const m = map();
  function place(latlng, how, pan) {
    if (!marker) {
      // Named in the page's language: with Leaflet's keyboard support the pin is a focusable button.
      marker = L.marker(latlng, { draggable: true, autoPan: true, title: t("pin"), alt: t("pin") }).addTo(m);
      marker.on("dragend", () => onChange(marker.getLatLng(), "pin"));
    } else marker.setLatLng(latlng);
    if (pan) m.setView(latlng, Math.max(m.getZoom(), 16));
    onChange(marker.getLatLng(), how);
  }
  m.on("click", (e) => place(e.latlng, "pin", false));
  return { place, get: () => (marker ? marker.getLatLng() : null) };
}

export function gps({ timeout = 8000 } = {}) {
  return new Promise((resolve) => {
    if (!navigator.geolocation) return resolve(null);
    navigator.geolocation.getCurrentPosition(
      (p) => resolve({ lat: p.coords.latitude, lon: p.coords.longitude, accuracy: p.coords.accuracy }),
      () => resolve(null),
      { enableHighAccuracy: true, timeout, maximumAge: 30000 },
    );
  });
}


/* --- case states, as the server describes them (gridmgmt.states.states_describe, in the page config) --- */
export const states = { open: [], clocked: [], lights: [], labels: {}, ...(config.states || {}) };

/* --- workflow actions ---
   Each case the API sends carries `actions`: what this user may do to it now, as
   {name, label, path, fields, inputs: [{name, kind, label, required}], danger} (gridmgmt.rules). A face
   shows one control per input, POSTs `fields` + the inputs' values to /api/cases/{id}/{path}/, and holds no
   rule of its own: a refused action comes back with the server's message. */

export const actionLabel = (action) => action.label.charAt(0).toUpperCase() + action.label.slice(1);

/* A button for an action (data-action is its name). */
export function actionButton(action, onclick, attrs = {}) {
  return h("button", {
    type: "button",
    class: action.danger ? "gm-secondary" : "gm-primary",
    "data-action": action.name,
    "data-danger": action.danger ? "true" : null,
    text: actionLabel(action),
    onclick,
    ...attrs,
  });
}

/* One control for one input of an action. */
let controlSerial = 0;
function inputControl(input) {
  // Named by its <label for=…> (actionForm): what a screen reader and a tap on the words both reach.
  const attrs = { name: input.name, required: input.required, id: `gm-input-${++controlSerial}` };
  switch (input.kind) {
    case "photos":
      return h("input", { ...attrs, type: "file", accept: "image/*", capture: "environment", multiple: true });
    case "hours":
      return h("input", { ...attrs, type: "number", min: "0.5", step: "0.5", inputmode: "decimal" });
    case "satisfaction":
      return h(
        "select",
        attrs,
        h("option", { value: "", text: "—" }),
        [5, 4, 3, 2, 1].map((n) => h("option", { value: String(n), text: `${"★".repeat(n)} ${n}` })),
      );
    case "urgency":
      return h("select", attrs, h("option", { value: "", text: "—" }), (config.urgencies || []).map(([v, l]) => h("option", { value: v, text: l })));
    case "case":
      return h("input", { ...attrs, type: "text", maxlength: 32, autocomplete: "off" });
    case "component": // a component code (the desk fills it from a click on the components layer)
      return h("input", { ...attrs, type: "text", maxlength: 24, autocomplete: "off", "data-component-input": "" });
    case "category": // a category code; the page may offer a <datalist id="gm-categories"> of them
      return h("input", { ...attrs, type: "text", maxlength: 16, autocomplete: "off", list: "gm-categories" });
    default: // "text", and any kind this page does not know yet
      return h("textarea", { ...attrs, rows: 2, maxlength: 2000 });
  }
}

/* The form of an action: a control per input not already given in `preset` (a team picked from the
   ranking, a case picked from the duplicates), the browser's own check of the required ones, then
   onSubmit({fields, files}) with `fields` = the action's fixed fields + the preset + the typed values and
   `files` = [{field, name, blob}]. Returns the <form>. */
export function actionForm(action, { preset = {}, title = "", submitLabel = "", onSubmit, onCancel } = {}) {
  const inputs = (action.inputs || []).filter((i) => !(i.name in preset));
  const controls = inputs.map((input) => [input, inputControl(input)]);
  const err = h("p", { class: "gm-msg", role: "alert", hidden: true });
  const form = h(
    "form",
    { class: "gm-form gm-action-form", "data-action": action.name, novalidate: true },
    title ? h("strong", { text: title }) : null,
    controls.map(([input, control]) =>
      h(
        "label",
        { "data-input": input.name, "data-kind": input.kind, for: control.id },
        h("span", { class: "gm-label-text", text: input.label }, input.required ? h("span", { class: "gm-required", text: ` * ${t("required")}` }) : null),
        control,
      ),
    ),
    err,
    h(
      "div",
      { class: "gm-actions" },
      h("button", { type: "submit", class: action.danger ? "gm-secondary" : "gm-primary", "data-danger": action.danger ? "true" : null, text: submitLabel || actionLabel(action) }),
      onCancel ? h("button", { type: "button", class: "gm-secondary", "data-cancel": "", text: t("cancel"), onclick: onCancel }) : null,
    ),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const fields = { ...(action.fields || {}), ...preset };
    const files = [];
    for (const [input, control] of controls) {
      if (input.kind === "photos") {
        // Several photos (up to the server's cap), each shrunk on the phone before it is queued or sent.
        const ready = await photosReady(control.files);
        if (ready.problem) return say(err, ready.problem, "error");
        for (const file of ready.files) files.push({ field: input.name, name: file.name || "photo.jpg", blob: file });
        if (input.required && !files.some((f) => f.field === input.name)) {
          control.focus();
          return say(err, t("input_photo_required", { label: input.label }), "error");
        }
        continue;
      }
      const value = control.value.trim();
      if (input.required && !value) {
        control.focus();
        return say(err, t("input_required", { label: input.label }), "error");
      }
      if (input.kind === "hours" && value && !(Number(value) > 0)) {
        control.focus();
        return say(err, t("input_hours", { label: input.label }), "error");
      }
      if (value) fields[input.name] = input.kind === "satisfaction" ? Number(value) : value;
    }
    say(err, "");
    onSubmit({ fields, files });
  });
  return form;
}

/* A POST body: JSON, or multipart when there are files (as the API takes photos). */
export function actionBody(fields, files) {
  if (!files || !files.length) return fields;
  const body = new FormData();
  for (const [k, v] of Object.entries(fields)) if (v !== null && v !== undefined) body.append(k, v);
  for (const f of files) body.append(f.field, f.blob, f.name);
  return body;
}
