/* /report/: a resident's report. Everything typed is kept in the browser (localStorage + IndexedDB for the
   photo) until the server has the case, and one idempotency key per draft makes a retry safe. */
import { api, config, exifGps, gps, h, locationPin, map, photoProblem, say, store, t, timeText, uuid } from "./common.js";
import { myReports, myReportSave, trackPath, trackUrl } from "./myreports.js";

const $ = (id) => document.getElementById(id);
const form = $("report-form");
const msg = $("msg");
const DRAFT = "gm-report-draft";
let draft = JSON.parse(localStorage.getItem(DRAFT) || "null") || { key: uuid() };
// This browser's random id (kept): the server scopes the idempotency key to it, so a replay is answered only to
// the device that sent the report, and another device's key is just another key.
const DEVICE = "gm-device";
if (!localStorage.getItem(DEVICE)) localStorage.setItem(DEVICE, uuid());
let photo = null;
let checkedDuplicatesFor = null; // the (category, point) the resident already said "not one of these" to

function saveDraft() {
  draft.category = $("category").value;
  draft.description = $("description").value;
  draft.phone = $("phone").value;
  localStorage.setItem(DRAFT, JSON.stringify(draft));
}

// Categories in plain words, grouped by major class.
const groups = {};
for (const c of config.categories || []) (groups[c.major] = groups[c.major] || []).push(c);
for (const [major, items] of Object.entries(groups)) {
  $("category").append(h("optgroup", { label: major }, items.map((c) => h("option", { value: c.code, text: c.plain }))));
}

const pin = locationPin((latlng, how) => {
  draft.lat = latlng.lat;
  draft.lon = latlng.lng;
  draft.how = how;
  say($("loc-status"), how === "gps" ? t("located_gps", { m: draft.accuracy ?? "?" }) : t(how === "exif" ? "located_exif" : "located_pin"));
  if (msg.dataset.field === "location") say(msg, "");
  saveDraft();
});

async function locate() {
  say($("loc-status"), t("locating"));
  const p = await gps();
  if (p) {
    draft.accuracy = Math.round(p.accuracy);
    pin.place(L.latLng(p.lat, p.lon), "gps", true);
    return true;
  }
  if (photo) {
    const e = await exifGps(photo);
    if (e) {
      pin.place(L.latLng(e.lat, e.lon), "exif", true);
      return true;
    }
  }
  say($("loc-status"), t("gps_failed"), "warn");
  return false;
}
$("locate").addEventListener("click", locate);

async function setPhoto(file, persist) {
  const problem = photoProblem(file);
  if (problem) {
    say(msg, problem, "error");
    msg.dataset.field = "photos";
    $("photo").value = "";
    return;
  }
  photo = file;
  $("photo-preview").src = URL.createObjectURL(file);
  $("photo-preview").hidden = false;
  if (msg.dataset.field === "photos") say(msg, "");
  if (persist) await store.put("drafts", file, "report-photo");
  if (draft.lat === undefined) {
    const e = await exifGps(file);
    if (e) pin.place(L.latLng(e.lat, e.lon), "exif", true);
  }
}
$("photo").addEventListener("change", (e) => e.target.files[0] && setPhoto(e.target.files[0], true));
form.addEventListener("input", saveDraft);

// Restore what was typed before a reload or a lost connection.
$("category").value = draft.category || "";
$("description").value = draft.description || "";
$("phone").value = draft.phone || "";
if (draft.lat !== undefined) pin.place(L.latLng(draft.lat, draft.lon), draft.how || "pin", true);
store.get("drafts", "report-photo").then((file) => file && setPhoto(file, false)).catch(() => {});

function problem() {
  if (!photo) return ["photos", t("photo_required")];
  if (draft.lat === undefined) return ["location", t("location_required")];
  if (!$("category").value) return ["category", t("category_required")];
  return null;
}

function duplicateList(data) {
  const items = (data && (data.features || data.results || data.duplicates)) || (Array.isArray(data) ? data : []);
  return items.map((f) => ({ ...(f.properties || f), id: f.id ?? (f.properties || f).id }));
}

async function checkDuplicates() {
  const signature = `${draft.category}|${draft.lon.toFixed(5)}|${draft.lat.toFixed(5)}`;
  if (checkedDuplicatesFor === signature) return false;
  const q = new URLSearchParams({ category: draft.category, lon: draft.lon, lat: draft.lat });
  const r = await api(`/api/duplicates/?${q}`);
  checkedDuplicatesFor = signature;
  const items = r.ok ? duplicateList(r.data) : [];
  if (!items.length) return false;
  const box = $("dups");
  box.replaceChildren(
    h("h2", { text: t("duplicates") }),
    h(
      "ul",
      {},
      items.slice(0, 5).map((d) =>
        h(
          "li",
          {},
          h("span", { text: `${d.code} · ${d.category_label || d.category?.label || d.category || ""} · ${d.status_label || ""}` }),
          d.distance_m !== undefined ? h("span", { class: "gm-muted", text: ` ${Math.round(d.distance_m)} m` }) : null,
          h("button", { type: "button", class: "gm-secondary", "data-code": d.code, "aria-label": t("support_this", { code: d.code }), onclick: () => support(d.code), text: "+1" }),
        ),
      ),
    ),
    h("button", { type: "button", class: "gm-secondary", onclick: () => submit(true), text: t("not_same") }),
  );
  box.hidden = false;
  return true;
}

async function support(code) {
  const r = await api(`/api/public/cases/${encodeURIComponent(code)}/support/`, { method: "POST", body: {} });
  if (!r.ok) return say(msg, r.message, "error");
  clearDraft();
  $("dups").hidden = true;
  showResult(code, null, t("supported"), "");
}

function clearDraft() {
  localStorage.removeItem(DRAFT);
  store.del("drafts", "report-photo").catch(() => {});
  draft = { key: uuid() };
}

/* The result, where a resident cannot miss it: at the top of the page (the form is put away), focused, with
   the case number, the link to keep (with the token it is the only way to rate from another device) and
   copy/share buttons whose messages appear right under them. */
function showResult(code, token, text, category) {
  myReportSave({ code, token, category });
  const url = trackUrl(code, token);
  const note = h("p", { class: "gm-msg", role: "status", hidden: true });
  const copy = async () => {
    let ok = false;
    try {
      await navigator.clipboard.writeText(url);
      ok = true;
    } catch (err) {
      link.select();
      try {
        ok = document.execCommand("copy");
      } catch (err2) {
        ok = false;
      }
    }
    say(note, ok ? t("copied") : t("copy_failed"), ok ? "ok" : "warn");
  };
  const share = async () => {
    if (!navigator.share) return copy();
    try {
      await navigator.share({ title: t("share_title", { code }), text: t("share_title", { code }), url });
    } catch (err) {
      if (err && err.name !== "AbortError") copy();
    }
  };
  const link = h("input", { id: "result-link", class: "gm-link", type: "text", readonly: true, value: url, "aria-label": t("track"), onfocus: (e) => e.target.select() });
  $("result").replaceChildren(
    h("h2", { id: "result-title", text }),
    h("p", { class: "gm-code-box" }, h("span", { class: "gm-muted", text: t("case_number") }), h("strong", { id: "result-code", class: "gm-code", text: code })),
    token ? h("p", { class: "gm-keep", text: t("keep_link") }) : null,
    link,
    h(
      "div",
      { class: "gm-actions" },
      h("button", { type: "button", id: "result-copy", class: "gm-secondary", text: t("copy"), onclick: copy }),
      h("button", { type: "button", id: "result-share", class: "gm-secondary", text: t("share"), onclick: share }),
    ),
    note,
    h("div", { class: "gm-actions" }, h("a", { href: trackPath(code), class: "gm-primary", text: t("track") }), h("a", { href: location.pathname, class: "gm-secondary", text: t("report_another") })),
  );
  $("result").hidden = false;
  form.hidden = true;
  renderMine();
  $("result").scrollIntoView({ block: "start" }); // the card's own scroll (side by side on a desk)
  window.scrollTo(0, 0); // a phone scrolls the page: the result sits right under the title bar
  $("result").focus({ preventScroll: true });
}

/* "My reports": what this device reported, newest first, each linking to its tracking page. */
function renderMine() {
  const list = myReports();
  $("mine").hidden = !list.length;
  $("mine-jump").hidden = !list.length || form.hidden; // a way down to the list, above the long form
  $("mine-count").textContent = String(list.length);
  $("mine-list").replaceChildren(
    ...list.map((r) =>
      h(
        "li",
        { "data-case": r.code },
        h("a", { href: trackPath(r.code), text: r.code }),
        h("span", { class: "gm-muted", text: [r.category, r.at ? timeText(r.at) : ""].filter(Boolean).join(" · ") }),
      ),
    ),
  );
}
renderMine();

async function submit(skipDuplicates) {
  saveDraft();
  const p = problem();
  if (p) {
    msg.dataset.field = p[0];
    return say(msg, p[1], "error");
  }
  if (!skipDuplicates && (await checkDuplicates())) return;
  const body = new FormData();
  body.append("category", draft.category);
  body.append("lon", draft.lon.toFixed(7));
  body.append("lat", draft.lat.toFixed(7));
  body.append("description", draft.description || "");
  body.append("reporter_phone", draft.phone || "");
  body.append("photos", photo, photo.name || "photo.jpg");
  $("submit").disabled = true;
  say(msg, t("submitting"), "info");
  const headers = { "Idempotency-Key": draft.key, "X-Device-Id": localStorage.getItem(DEVICE) };
  const r = await api("/api/public/reports/", { method: "POST", body, headers });
  $("submit").disabled = false;
  if (!r.ok) {
    msg.dataset.field = (r.data && r.data.field) || "";
    return say(msg, r.data && r.data.code === "outside_service_area" ? t("outside") : r.message, "error");
  }
  say(msg, "");
  $("dups").hidden = true;
  clearDraft();
  showResult(r.data.code, r.data.tracking_token, t("received"), r.data.category);
}

// The public map: open problems nearby (non-sensitive categories, at their cell's centre), so a
// resident sees what is already known before reporting it again.
const publicLayer = L.layerGroup().addTo(map());
let mapTimer = null;
async function loadPublic() {
  const b = map().getBounds();
  const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(5)).join(",");
  const r = await api(`/report/map.json?bbox=${bbox}`);
  if (!r.ok) return;
  publicLayer.clearLayers();
  for (const [lat, lon, code, category, status] of r.data.cases) {
    const popup = h(
      "div",
      { class: "gm-public-case" },
      h("strong", { text: category }),
      h("div", { text: `${status} · ${code}` }),
      h("a", { href: `/report/track/${encodeURIComponent(code)}`, text: t("track") }),
      " ",
      h("button", { type: "button", class: "gm-secondary", "data-code": code, text: "+1", onclick: () => support(code) }),
    );
    L.circleMarker([lat, lon], { radius: 6, color: "#8e44ad", weight: 2, fillOpacity: 0.4, className: "gm-public" })
      .bindPopup(popup)
      .addTo(publicLayer);
  }
}
map().on("moveend", () => {
  clearTimeout(mapTimer);
  mapTimer = setTimeout(loadPublic, 300);
});
loadPublic();

form.addEventListener("submit", (e) => {
  e.preventDefault();
  submit(false);
});
$("track-go").addEventListener("click", () => {
  const code = $("track-code").value.trim();
  if (code) location.href = `/report/track/${encodeURIComponent(code)}`;
});
