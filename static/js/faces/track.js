/* /report/track/<code>: the public timeline with a live deadline countdown; after closing, the reporter
   (holding the tracking token from report time) rates the result or says it is not fixed. */
import { api, config, countdown, h, map, say, t, timeText } from "./common.js";

const $ = (id) => document.getElementById(id);
const code = config.code;
const params = new URLSearchParams(location.search);
const token = params.get("token") || localStorage.getItem(`gm-track-${code}`) || "";
if (params.get("token")) localStorage.setItem(`gm-track-${code}`, params.get("token"));
const base = `/api/public/cases/${encodeURIComponent(code)}/`;
let score = 0;
let marker = null;
let current = null;

function render(c) {
  current = c;
  $("facts").hidden = false;
  $("status").textContent = c.status_label;
  $("status").dataset.status = c.status;
  $("category").textContent = c.category;
  $("reported-at").textContent = timeText(c.reported_at);
  $("supporters").textContent = String(c.supporters);
  tick();
  $("timeline").replaceChildren(
    ...c.events.map((e) => h("li", { "data-type": e.type }, h("time", { text: timeText(e.at) }), h("span", { text: e.type_label }))),
  );
  const feedback = (config.feedback || []).includes(c.status); // the server's statuses for rating/reopening
  $("feedback").hidden = !(feedback && token && c.satisfaction === null);
  if (c.location && c.location.coordinates) {
    const [lon, lat] = c.location.coordinates;
    if (!marker) {
      marker = L.circleMarker([lat, lon], { radius: 10, color: "#c0392b", fillOpacity: 0.5 }).addTo(map());
      map().setView([lat, lon], 16);
    }
  }
}

function tick() {
  if (!current) return;
  if (current.closed_at) $("due").textContent = timeText(current.due_at);
  else if (current.due_at) $("due").textContent = `${timeText(current.due_at)}(${countdown(current.due_at)})`;
  else $("due").textContent = "—";
}

async function load() {
  const r = await api(base + (token ? `?token=${encodeURIComponent(token)}` : ""));
  if (!r.ok) return say($("msg"), r.status === 404 ? t("not_found") : r.message, "error");
  say($("msg"), "");
  render(r.data);
}

document.querySelectorAll(".gm-star").forEach((b) =>
  b.addEventListener("click", () => {
    score = Number(b.dataset.score);
    document.querySelectorAll(".gm-star").forEach((s) => s.classList.toggle("on", Number(s.dataset.score) <= score));
  }),
);
$("rate").addEventListener("click", async () => {
  if (!score) return say($("msg"), t("pick_score"), "error");
  const r = await api(base + "rate/", { method: "POST", body: { token, satisfaction: score, note: $("feedback-note").value } });
  if (!r.ok) return say($("msg"), r.message, "error");
  say($("msg"), t("rated"), "ok");
  render(r.data);
});
$("reopen").addEventListener("click", async () => {
  const reason = $("feedback-note").value.trim();
  if (!reason) return say($("msg"), t("reason_required"), "error");
  const r = await api(base + "reopen/", { method: "POST", body: { token, reason } });
  if (!r.ok) return say($("msg"), r.message, "error");
  say($("msg"), t("reopened"), "ok");
  render(r.data);
});

load();
setInterval(tick, 30000);
setInterval(load, 60000);
