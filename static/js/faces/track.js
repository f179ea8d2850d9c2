/* /report/track/<code>: the public timeline with a live deadline countdown, the closing words and the
   photos the public view carries (gridmgmt.access.case_public_view decides which); after closing, the
   reporter (holding the tracking token from report time) rates the result or says it is not fixed.
   Live: no public feed exists, so the page re-reads the public case every config.poll seconds while visible. */
import { api, config, countdown, h, map, say, states, t, timeText } from "./common.js";
import { myReportSave, tokenOf } from "./myreports.js";

const $ = (id) => document.getElementById(id);
const code = config.code;
const params = new URLSearchParams(location.search);
const token = params.get("token") || tokenOf(code);
if (params.get("token")) myReportSave({ code, token: params.get("token") }); // this device now follows it
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
  document.querySelectorAll(".gm-rated").forEach((n) => (n.hidden = c.satisfaction === null));
  $("satisfaction").textContent = c.satisfaction === null ? "" : `${"★".repeat(c.satisfaction)} ${c.satisfaction}/5`;
  tick();
  $("timeline").replaceChildren(
    ...c.events.map((e) => h("li", { "data-type": e.type }, h("time", { text: timeText(e.at) }), h("span", { text: e.type_label }))),
  );
  const feedback = (config.feedback || []).includes(c.status); // the server's statuses for rating/reopening
  $("feedback").hidden = !(feedback && token && c.satisfaction === null);
  // No public reply exists in the public view: the closing status speaks (its words come from the server).
  const closing = c.merged ? t("merged_note") : (config.closing || {})[c.status];
  if (closing) say($("reply"), closing, "done");
  else say($("reply"), states.open.includes(c.status) ? t("closing_open") : "", "open");
  const photos = c.photos || [];
  $("photos-box").hidden = !photos.length;
  $("photos").replaceChildren(
    ...photos.map((p) =>
      h(
        "figure",
        { "data-kind": p.kind },
        h("a", { href: p.url, target: "_blank", rel: "noopener" }, h("img", { src: p.url, alt: photoLabel(p.kind), loading: "lazy" })),
        h("figcaption", { text: photoLabel(p.kind) }),
      ),
    ),
  );
  if (token && c.category) myReportSave({ code, category: c.category, at: c.reported_at });
  if (c.location && c.location.coordinates) {
    const [lon, lat] = c.location.coordinates;
    if (!marker) {
      marker = L.circleMarker([lat, lon], { radius: 10, color: "#c0392b", fillOpacity: 0.5 }).addTo(map());
      // The layout may have moved since folium fitted the district: measure again, then zoom to the cell.
      map().invalidateSize();
      map().setView([lat, lon], 17, { animate: false });
    }
  }
}

function photoLabel(kind) {
  return (config.photoKinds || {})[kind] || kind;
}

function tick() {
  if (!current) return;
  if (current.closed_at) $("due").textContent = timeText(current.due_at);
  else if (current.due_at) $("due").textContent = `${timeText(current.due_at)}(${countdown(current.due_at)})`;
  else $("due").textContent = "—";
}

async function load() {
  const r = await api(base + (token ? `?token=${encodeURIComponent(token)}` : ""));
  if (!r.ok) {
    // A failed refresh keeps what is shown; only a first load (nothing shown yet) says so at the top.
    if (!current) say($("msg"), r.status === 404 ? t("not_found") : r.message, "error");
    return;
  }
  say($("msg"), "");
  render(r.data);
  say($("live"), `${t("live")} · ${timeText(new Date().toISOString())}`);
}

function pickScore(n) {
  score = n;
  document.querySelectorAll(".gm-star").forEach((s) => {
    s.classList.toggle("on", Number(s.dataset.score) <= score);
    s.setAttribute("aria-pressed", String(Number(s.dataset.score) === score));
  });
}
document.querySelectorAll(".gm-star").forEach((b) => b.addEventListener("click", () => pickScore(Number(b.dataset.score))));

// Messages appear under the buttons that caused them; after a success the feedback box hides and the
// thanks take its place (#feedback-done, focused).
const fmsg = $("feedback-msg");
$("rate").addEventListener("click", async () => {
  if (!score) return say(fmsg, t("pick_score"), "error");
  const r = await api(base + "rate/", { method: "POST", body: { token, satisfaction: score, note: $("feedback-note").value } });
  if (!r.ok) return say(fmsg, r.message, "error");
  say(fmsg, "");
  render(r.data);
  say($("feedback-done"), t("rated"), "ok");
  $("feedback-done").focus();
});
$("reopen").addEventListener("click", async () => {
  const reason = $("feedback-note").value.trim();
  if (!reason) {
    $("feedback-note").focus();
    return say(fmsg, t("reason_required"), "error");
  }
  const r = await api(base + "reopen/", { method: "POST", body: { token, reason } });
  if (!r.ok) return say(fmsg, r.message, "error");
  say(fmsg, "");
  render(r.data);
  say($("feedback-done"), t("reopened"), "ok");
  $("feedback-done").focus();
});

load();
setInterval(tick, 1000);
setInterval(() => document.visibilityState === "visible" && load(), (config.poll || 20) * 1000);
document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && load());
