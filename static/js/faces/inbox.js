/* The inbox of every staff face (patrol phone, dispatch desk, wall): a badge with the unread count and a small
   list of the user's notifications (gridmgmt/notify.py). The page's feed client subscribes to the user's own
   scope (`config.inbox.scope`, "user:<id>") next to its others and hands that scope's snapshot and events to
   the inbox: the list is read from GET /api/notifications/, each `notification.created` event sets the badge
   to its `data.unread` and puts the line on top (realtime/PROTOCOL.md). Clicking a line marks it read, then
   opens its case (a notification about no case — cameras gone offline — has no link: clicking only marks it
   read); "mark all read" clears the badge. The face may react to a new notification (`onNew`: the
   phone beeps) and open a case itself (`onOpen`: returns true when it did). */
import { api, config, h, t, timeText } from "./common.js";

const $ = (id) => document.getElementById(id);

export function inbox({ onNew = null, onOpen = null } = {}) {
  const cfg = config.inbox;
  if (!cfg || !$("inbox")) return null;
  const toggle = $("inbox-toggle");
  const panel = $("inbox-panel");
  const count = $("inbox-count");
  const list = $("inbox-list");
  let items = []; // newest first: {id, case_id, case_code, title, text, created_at, read}
  let unread = 0;

  function badge(n) {
    unread = Math.max(0, Number(n) || 0);
    count.textContent = unread > 99 ? "99+" : String(unread);
    count.hidden = !unread;
    toggle.dataset.unread = String(unread);
    toggle.setAttribute("aria-label", unread ? t("inbox_unread", { n: unread }) : toggle.title);
  }

  // A notification about no case (cameras gone offline) links nowhere: its line only marks it read.
  const href = (n) => (n.case_id == null ? null : cfg.caseHref.replace("{id}", encodeURIComponent(n.case_id)).replace("{code}", encodeURIComponent(n.case_code)));

  function render() {
    if (!items.length) return list.replaceChildren(h("li", { class: "gm-muted", text: t("inbox_empty") }));
    list.replaceChildren(
      ...items.map((n) =>
        h(
          "li",
          { "data-id": n.id, "data-read": String(Boolean(n.read)), "data-case": n.case_code || "", "data-kind": n.kind || "" },
          h(
            href(n) ? "a" : "button",
            href(n) ? { href: href(n), onclick: (e) => open(e, n) } : { type: "button", class: "gm-inbox-item", onclick: (e) => open(e, n) },
            h("strong", { text: n.title }),
            n.text ? h("span", { text: n.text }) : null,
            h("small", { class: "gm-muted", text: timeText(n.created_at) }),
          ),
        ),
      ),
    );
  }

  async function load() {
    const r = await api(`${cfg.list}?page_size=20`);
    if (!r.ok) return;
    items = r.data.results || [];
    badge(r.data.unread);
    render();
  }

  async function open(e, n) {
    e.preventDefault();
    if (!n.read) {
      const r = await api(`${cfg.list}${n.id}/read/`, { method: "POST" });
      if (r.ok) {
        n.read = true;
        badge(r.data.unread);
        render();
      }
    }
    if (!href(n)) return; // nothing to open: the panel stays, the line now reads as read
    show(false);
    if (!(onOpen && onOpen(n))) location.href = href(n);
  }

  function show(on) {
    panel.hidden = !on;
    toggle.setAttribute("aria-expanded", String(on));
  }
  toggle.addEventListener("click", () => show(panel.hidden));
  document.addEventListener("keydown", (e) => e.key === "Escape" && show(false));
  document.addEventListener("click", (e) => !panel.hidden && !$("inbox").contains(e.target) && show(false));
  $("inbox-read-all").addEventListener("click", async () => {
    const r = await api(`${cfg.list}read-all/`, { method: "POST" });
    if (!r.ok) return;
    items.forEach((n) => (n.read = true));
    badge(r.data.unread);
    render();
  });

  // The feed's events of the user's scope (already in seq order, each once).
  function apply(events) {
    for (const env of events) {
      if (env.type !== "notification.created") continue;
      const d = env.data;
      if (!items.some((n) => n.id === d.id)) {
        items.unshift({ id: d.id, kind: d.kind, case_id: d.case_id, case_code: d.code, title: d.title, text: d.text || "", created_at: d.created_at, read: false });
        items = items.slice(0, 50);
      }
      badge(d.unread);
      render();
      if (onNew) onNew(d);
    }
  }

  badge(0);
  render();
  return { scope: cfg.scope, load, apply, panel, toggle };
}

/* A phone's attention: a short beep (WebAudio, no file), a vibration, and a system notification while the page
   is hidden, if the user allowed it. Browsers let a page make sound and ask for permission only after a user
   gesture: the first tap anywhere unlocks the sound, and the inbox's "alerts" button asks for notifications. */
export function alerts({ button, say }) {
  let audio = null;
  const unlock = () => {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!audio && Ctx) audio = new Ctx();
    if (audio && audio.state === "suspended") audio.resume();
  };
  document.addEventListener("pointerdown", unlock, { capture: true });
  document.addEventListener("keydown", unlock, { capture: true });

  const canNotify = "Notification" in window;
  if (button && canNotify && Notification.permission === "default") {
    button.hidden = false;
    button.addEventListener("click", async () => {
      unlock();
      const answer = await Notification.requestPermission();
      button.hidden = answer !== "default";
      say(answer === "granted" ? t("alerts_on") : t("alerts_denied"));
    });
  }

  function beep() {
    if (!audio || audio.state !== "running") return false;
    const now = audio.currentTime;
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = "sine";
    osc.frequency.setValueAtTime(880, now);
    osc.frequency.setValueAtTime(1320, now + 0.12);
    gain.gain.setValueAtTime(0.0001, now);
    gain.gain.exponentialRampToValueAtTime(0.3, now + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.3);
    osc.connect(gain).connect(audio.destination);
    osc.start(now);
    osc.stop(now + 0.32);
    return true;
  }

  async function system(note, url) {
    if (!canNotify || Notification.permission !== "granted" || !document.hidden) return false;
    const options = { body: note.text || note.code || "", tag: `gm-notification-${note.id}`, data: { url } };
    try {
      const reg = "serviceWorker" in navigator ? await navigator.serviceWorker.getRegistration() : null;
      if (reg) await reg.showNotification(note.title || t("inbox_new"), options);
      else new Notification(note.title || t("inbox_new"), options).onclick = () => window.focus();
      return true;
    } catch (err) {
      return false;
    }
  }

  // What the page did, counted on the inbox element (data-beeps…) for the tests and for whoever debugs a
  // silent phone.
  const root = document.getElementById("inbox");
  const count = (key) => root && (root.dataset[key] = String(Number(root.dataset[key] || 0) + 1));
  return async (note, url) => {
    if (beep()) count("beeps");
    if (navigator.vibrate && navigator.vibrate([200, 100, 200])) count("vibrations");
    if (await system(note, url)) count("notified");
  };
}
