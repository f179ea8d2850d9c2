/* The desk's own screens, beside the queue (dispatch.js): a case taken by phone (hotline hand entry, with the
   duplicate check), bulk file / void / dispatch, return visits (satisfaction by phone), the urge ledger (urges
   and their answers), the printable case sheet of the case shown, and the components layer on the map.
   Every decision is the server's: the actions and channels offered come in `config.desk` (gridmgmt.faces.desk),
   each result or refusal is the API's own message. dispatch.js tells this module which case it shows
   ("gm:case-shown") and is told when a case changed here ("gm:cases-changed"). */
import { api, config, h, map as leafletMap, say, timeText, uuid } from "./common.js";

const desk = config.desk || { bulk: [], sources: [], messages: {} };
const m = (key, params) => {
  let text = desk.messages[key] || key;
  for (const [k, v] of Object.entries(params || {})) text = text.replace(`%(${k})s`, v);
  return text;
};
const changed = () => document.dispatchEvent(new CustomEvent("gm:cases-changed"));
const map = leafletMap();

/* --- a dialog shell: one <dialog> reused by every screen --- */
const dialog = h("dialog", { class: "gm-desk-dialog", id: "desk-dialog", "aria-labelledby": "desk-dialog-title" });
document.body.append(dialog);
function open(title, ...body) {
  stopPicking();
  dialog.replaceChildren(
    h("header", {}, h("h2", { id: "desk-dialog-title", text: title }), h("button", { type: "button", class: "gm-secondary", text: m("close"), onclick: () => closeDialog() })),
    ...body,
  );
  if (!dialog.open) dialog.show(); // not modal: the map stays usable (a location is picked on it)
  dialog.querySelector("header button").focus();
}
dialog.addEventListener("keydown", (e) => e.key === "Escape" && closeDialog());
function closeDialog() {
  if (dialog.open) dialog.close();
  stopPicking();
}

const field = (label, control) => h("label", { class: "gm-desk-field" }, h("span", { text: label }), control);
const msg = () => h("p", { class: "gm-msg", role: "alert", hidden: true });

/* --- the toolbar, at the top of the queue --- */
const tools = document.getElementById("desk-tools");
if (tools) {
  const buttons = [];
  if (desk.sources.length) buttons.push(h("button", { type: "button", id: "desk-new", class: "gm-secondary", text: m("new_case"), onclick: newCase }));
  if (desk.bulk.length) buttons.push(h("button", { type: "button", id: "desk-bulk", class: "gm-secondary", text: m("bulk"), onclick: bulk }));
  if (desk.returnVisit) buttons.push(h("button", { type: "button", id: "desk-visits", class: "gm-secondary", text: m("return_visits"), onclick: returnVisits }));
  buttons.push(h("button", { type: "button", id: "desk-urges", class: "gm-secondary", text: m("urges"), onclick: urges }));
  tools.replaceChildren(...buttons);
}

/* --- the case shown: its printable sheet --- */
document.addEventListener("gm:case-shown", (e) => {
  const actions = document.getElementById("d-actions");
  const p = e.detail && e.detail.properties;
  if (!actions || !p) return;
  actions.append(h("a", { class: "gm-secondary gm-desk-print", id: "desk-print", href: desk.printUrl.replace("CODE", encodeURIComponent(p.code)), target: "_blank", rel: "noopener", text: m("print") }));
});

/* --- phone entry: a case taken by phone or ordered from above, checked for duplicates before it is created --- */
let picking = null; // {onPick} while the form waits for a click on the map
let pickMarker = null;
function stopPicking() {
  picking = null;
  if (pickMarker) pickMarker.remove();
  pickMarker = null;
  map.getContainer().classList.remove("gm-picking");
}
map.on("click", (e) => picking && picking.onPick(e.latlng, ""));

let categories = null;
async function loadCategories() {
  if (!categories) {
    const r = await api("/api/categories/?page_size=500");
    categories = r.ok ? r.data.results || [] : [];
  }
  return categories;
}

/* The category codes the reclassify form (an input of kind "category", common.js) offers. */
loadCategories().then((cats) =>
  document.body.append(h("datalist", { id: "gm-categories" }, cats.flatMap((major) => (major.children || []).map((c) => h("option", { value: c.code, text: `${c.code} ${c.label || c.name}` }))))),
);

async function newCase() {
  const cats = await loadCategories();
  const category = h("select", { name: "category", required: true }, h("option", { value: "", text: "—" }), cats.map((major) => h("optgroup", { label: major.label || major.name }, (major.children || []).map((c) => h("option", { value: c.code, text: `${c.code} ${c.label || c.name}` })))));
  const source = h("select", { name: "source" }, desk.sources.map((s) => h("option", { value: s.value, text: s.label })));
  const address = h("input", { name: "address", maxlength: 200 });
  const description = h("textarea", { name: "description", rows: 2, maxlength: 2000 });
  const reporterName = h("input", { name: "reporter_name", maxlength: 50 });
  const reporterPhone = h("input", { name: "reporter_phone", maxlength: 20, inputmode: "tel" });
  const externalId = h("input", { name: "external_id", maxlength: 64 });
  const component = h("input", { name: "component", maxlength: 24, autocomplete: "off" });
  const where = h("p", { class: "gm-muted", id: "desk-where", text: m("pick_on_map") });
  const err = msg();
  const dups = h("div", { id: "desk-dups" });
  let point = null;
  const key = uuid(); // one form, one case: a second click (or a resend) returns the case already created
  const form = h(
    "form",
    { class: "gm-form gm-desk-form", id: "desk-new-form", novalidate: true },
    field(m("source"), source),
    field(m("category"), category),
    field(m("location"), where),
    field(m("component"), component),
    field(m("address"), address),
    field(m("description"), description),
    h("div", { class: "gm-desk-row" }, field(m("reporter_name"), reporterName), field(m("reporter_phone"), reporterPhone), field(m("external_id"), externalId)),
    err,
    dups,
    h("div", { class: "gm-actions" }, h("button", { type: "submit", class: "gm-primary", text: m("check_duplicates") })),
  );
  open(m("new_case"), form);
  // The panel is not modal: while it is open a click on the map (or on a component) places the case.
  picking = {
    onPick(latlng, code) {
      point = latlng;
      if (code) component.value = code;
      pickMarker = (pickMarker || L.marker(latlng, { title: m("location") }).addTo(map)).setLatLng(latlng);
      where.textContent = m("location_picked", { lon: latlng.lng.toFixed(6), lat: latlng.lat.toFixed(6) });
    },
  };
  map.getContainer().classList.add("gm-picking");
  const body = () => {
    const b = { category: category.value, source: source.value, lon: point.lng, lat: point.lat, address: address.value.trim(), description: description.value.trim(), reporter_name: reporterName.value.trim(), reporter_phone: reporterPhone.value.trim(), external_id: externalId.value.trim() };
    if (component.value.trim()) b.component = component.value.trim();
    return b;
  };
  async function create() {
    const r = await api("/api/cases/", { method: "POST", body: body(), headers: { "Idempotency-Key": key } });
    if (!r.ok) return say(err, r.message, "error");
    say(err, m("created", { code: r.data.properties.code }), "ok");
    dups.replaceChildren();
    changed();
  }
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!category.value) return say(err, m("need_category"), "error");
    if (!point) return say(err, m("need_location"), "error");
    say(err, "");
    const q = new URLSearchParams({ category: category.value, lon: point.lng, lat: point.lat });
    const r = await api(`/api/duplicates/?${q}`);
    const found = r.ok ? r.data.features || [] : [];
    if (!found.length) return create();
    dups.replaceChildren(
      h("p", { text: m("duplicates_found", { n: found.length }) }),
      h(
        "ul",
        { class: "gm-list" },
        found.map((d) =>
          h(
            "li",
            { "data-case": d.properties.code },
            h("span", { text: `${d.properties.code} · ${d.properties.status_label} · ${Math.round(d.properties.distance_m)} m · ${d.properties.summary || d.properties.address || ""}` }),
            h("button", {
              type: "button",
              class: "gm-secondary",
              text: m("merge_into"),
              onclick: async () => {
                const s = await api(`/api/cases/${d.id}/support/`, { method: "POST", body: { note: [description.value.trim(), reporterName.value.trim(), externalId.value.trim()].filter(Boolean).join(" · ").slice(0, 200) } });
                if (!s.ok) return say(err, s.message, "error");
                say(err, m("merged", { code: d.properties.code }), "ok");
                dups.replaceChildren();
                changed();
              },
            }),
          ),
        ),
      ),
      h("button", { type: "button", class: "gm-primary", id: "desk-proceed", text: m("proceed"), onclick: create }),
    );
  });
}

/* --- bulk: one request for several cases; each gets its own event, refusals come back per case --- */
async function bulk() {
  const action = h("select", { name: "action", id: "desk-bulk-action" }, desk.bulk.map((a) => h("option", { value: a.name, text: a.label })));
  const team = h("select", { name: "team", id: "desk-bulk-team" });
  const reason = h("input", { name: "reason", id: "desk-bulk-reason", maxlength: 1000 });
  const list = h("ul", { class: "gm-list gm-desk-pick", id: "desk-bulk-list" });
  const count = h("span", { class: "gm-muted" });
  const err = msg();
  const results = h("ul", { class: "gm-list", id: "desk-bulk-results" });
  const teamField = field(m("team"), team);
  const reasonField = field(m("reason"), reason);
  const recount = () => (count.textContent = m("selected", { n: list.querySelectorAll("input:checked").length }));
  async function load() {
    const a = action.value;
    teamField.hidden = a !== "dispatch";
    reasonField.firstChild.textContent = a === "void" ? m("reason") : m("note");
    const statuses = desk.bulk.find((x) => x.name === a).statuses; // the rule's start statuses, from the server
    const r = await api(`/api/cases/?status=${statuses}&page_size=100`);
    const items = r.ok ? r.data.features : [];
    list.replaceChildren(
      ...(items.length
        ? items.map((f) => h("li", {}, h("label", {}, h("input", { type: "checkbox", value: f.id, "data-case": f.properties.code, onchange: recount }), h("span", { text: ` ${f.properties.code} · ${(f.properties.category && (f.properties.category.label || f.properties.category.name)) || ""} · ${f.properties.address || f.properties.summary || ""}` }))))
        : [h("li", { class: "gm-muted", text: m("no_items") })]),
    );
    recount();
    if (a === "dispatch" && !team.options.length) {
      const t = await api("/api/teams/?page_size=500");
      team.replaceChildren(...(t.ok ? t.data.features.map((f) => h("option", { value: f.id, text: f.properties.name })) : []));
    }
  }
  action.addEventListener("change", load);
  const run = async () => {
    const ids = [...list.querySelectorAll("input:checked")].map((i) => Number(i.value));
    if (!ids.length) return say(err, m("none_selected"), "error");
    const a = action.value;
    const text = reason.value.trim();
    const b = { action: a, cases: ids, note: a === "void" ? "" : text, reason: a === "void" ? text : "" };
    if (a === "dispatch") b.team = Number(team.value);
    const r = await api("/api/cases/bulk/", { method: "POST", body: b });
    if (!r.ok) return say(err, r.message, "error");
    say(err, m("bulk_result", { ok: r.data.ok, failed: r.data.failed }), r.data.failed ? "error" : "ok");
    const codes = Object.fromEntries([...list.querySelectorAll("input")].map((i) => [i.value, i.dataset.case]));
    results.replaceChildren(...r.data.results.map((x) => h("li", { "data-ok": String(x.ok), text: `${x.code || codes[x.id] || x.id} · ${x.ok ? "✓" : `✗ ${x.error.detail}`}` })));
    changed();
    load();
  };
  open(
    m("bulk"),
    h("div", { class: "gm-desk-row" }, field(m("action"), action), teamField, reasonField),
    h("div", { class: "gm-desk-row" }, h("button", { type: "button", class: "gm-secondary", text: m("select_all"), onclick: () => (list.querySelectorAll("input").forEach((i) => (i.checked = true)), recount()) }), count),
    list,
    err,
    results,
    h("div", { class: "gm-actions" }, h("button", { type: "button", class: "gm-primary", id: "desk-bulk-run", text: m("run"), onclick: run })),
  );
  load();
}

/* --- return visits: closed cases nobody has rated, the reporter called back, the answer recorded (RATED, via phone) --- */
async function returnVisits() {
  const list = h("ul", { class: "gm-list", id: "desk-visit-list" });
  const err = msg();
  open(m("return_visits"), err, list);
  const r = await api("/api/return-visits/?page_size=100");
  if (!r.ok) return say(err, r.message, "error");
  if (!r.data.features.length) return list.replaceChildren(h("li", { class: "gm-muted", text: m("no_items") }));
  list.replaceChildren(
    ...r.data.features.map((f) => {
      const p = f.properties;
      const score = h("select", { "aria-label": m("satisfaction") }, h("option", { value: "", text: `${m("satisfaction")} —` }), [5, 4, 3, 2, 1].map((n) => h("option", { value: n, text: `${"★".repeat(n)} ${n}` })));
      const note = h("input", { maxlength: 1000, "aria-label": m("note"), placeholder: m("note") });
      const line = h("p", { class: "gm-msg", hidden: true });
      // The list shows the number masked; the whole one is asked for per case, when calling (logged, limited).
      const phone = h("span", { class: "gm-visit-phone" }, p.reporter_phone, " ", h("button", {
        type: "button",
        text: m("show_phone"),
        onclick: async () => {
          const r = await api(`/api/cases/${f.id}/reporter-phone/`, { method: "POST" });
          if (!r.ok) return say(line, r.message, "error");
          phone.replaceChildren(h("a", { href: `tel:${r.data.phone}`, text: `${m("call")} ${r.data.phone}` }));
        },
      }));
      return h(
        "li",
        { "data-case": p.code },
        h("strong", { text: `${p.code} · ${(p.category && (p.category.label || p.category.name)) || ""}` }),
        h("span", { class: "gm-muted" }, `${p.reporter_name || ""} `, phone, ` · ${timeText(p.closed_at)} · ${p.address || p.summary || ""}`),
        h("div", { class: "gm-desk-row" }, score, note, h("button", {
          type: "button",
          class: "gm-primary",
          text: m("record"),
          onclick: async () => {
            if (!score.value) return say(line, m("need_satisfaction"), "error");
            const s = await api(`/api/cases/${f.id}/rate/`, { method: "POST", body: { satisfaction: Number(score.value), note: note.value.trim(), via: "phone" } });
            say(line, s.ok ? m("recorded") : s.message, s.ok ? "ok" : "error");
          },
        })),
        line,
      );
    }),
  );
}

/* --- the urge ledger: every urge on the cases this user may see, with its answer once given --- */
async function urges() {
  const filter = h("select", { id: "desk-urge-filter" }, h("option", { value: "", text: m("all") }), h("option", { value: "false", text: m("unanswered") }), h("option", { value: "true", text: m("answered") }));
  const body = h("tbody");
  const err = msg();
  async function load() {
    const r = await api(`/api/urges/?page_size=200${filter.value ? `&answered=${filter.value}` : ""}`);
    if (!r.ok) return say(err, r.message, "error");
    body.replaceChildren(
      ...(r.data.results.length
        ? r.data.results.map((u) =>
            h("tr", { "data-answered": String(u.answered) }, h("td", { text: timeText(u.at) }), h("td", {}, h("button", { type: "button", class: "gm-link", text: u.case_code, onclick: () => document.dispatchEvent(new CustomEvent("gm:open-case", { detail: u.case_id })) })), h("td", { text: u.team || u.party || "" }), h("td", { text: u.note }), h("td", { text: u.answered ? `${timeText(u.answer_at)} ${u.answer_by || ""}: ${u.answer_note}` : m("unanswered") })),
          )
        : [h("tr", {}, h("td", { colspan: 5, class: "gm-muted", text: m("no_items") }))]),
    );
  }
  filter.addEventListener("change", load);
  open(
    m("urges"),
    field(m("status_filter"), filter),
    err,
    h("table", { class: "gm-desk-table", id: "desk-urge-table" }, h("thead", {}, h("tr", {}, [m("urged_at"), m("case"), m("team"), m("urge_note"), m("answer")].map((x) => h("th", { text: x })))), body),
  );
  load();
}

/* --- components layer: from zoom 16, the components in view (GeoJSON by box); a click picks one for a form --- */
const components = L.layerGroup().addTo(map);
let componentsAsked = 0;
async function loadComponents() {
  const ask = ++componentsAsked;
  if (map.getZoom() < desk.componentMinZoom) return components.clearLayers();
  const b = map.getBounds();
  const r = await api(`/api/components/?in_bbox=${[b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(6)).join(",")}`);
  if (ask !== componentsAsked || !r.ok) return;
  components.clearLayers();
  for (const f of r.data.features) {
    const [lon, lat] = f.geometry.coordinates;
    const p = f.properties;
    L.circleMarker([lat, lon], { radius: 5, color: "#6c3483", weight: 2, fillColor: "#d2b4de", fillOpacity: 0.9, className: "gm-component" })
      .bindTooltip(`${m("components_layer")} ${p.code} ${p.name || p.major_class_label}${p.maintainer ? ` · ${p.maintainer}` : ""}`)
      .on("click", (e) => {
        L.DomEvent.stop(e);
        if (picking) return picking.onPick(L.latLng(lat, lon), p.code);
        // The case's link-component form, when open (an input of kind "component", common.js): the click names it.
        const input = document.querySelector("#d-form [data-component-input]");
        if (input) input.value = p.code;
      })
      .addTo(components);
  }
}
map.on("moveend", loadComponents);
// The layer's key, shown while the layer is (zoom ≥ componentMinZoom).
const legend = L.control({ position: "bottomright" });
legend.onAdd = () => h("div", { class: "gm-desk-legend", id: "desk-components-legend" }, h("span", { class: "gm-desk-swatch" }), h("span", { text: m("components_layer") }));
const legendShow = () => (map.getZoom() >= desk.componentMinZoom ? legend.addTo(map) : legend.remove());
map.on("zoomend", legendShow);
legendShow();
loadComponents();
