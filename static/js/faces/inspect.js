/* /patrol/ beside patrol.js: what the phone adds for its second kind of user, the grid inspector (jianduyuan), and
   for anyone who reports from it.
   - The check queue needs nothing here: the server gives an inspector's page the statuses of its checks
     (config.tasks: the check queue) and the feed scope of its area (config.taskScope), so patrol.js's task list, map,
     detail and action forms show the area's handled cases with the check_pass / check_fail actions the
     server allows — each with the photos and note it asks for, sent with where the phone is.
   - "My reports": the cases this user reported (GET /api/cases/?mine=true), newest first, with
     their status now — an inspector's or a patrol member's own reports, read from the server, so they are
     the same on every phone. */
import { api, config, h, timeText } from "./common.js";

const $ = (id) => document.getElementById(id);
const list = $("mine-list");

async function loadMine() {
  if (!list || !config.mine || !navigator.onLine) return;
  const r = await api(config.mine);
  if (!r.ok) return; // offline or refused: the list keeps what it showed
  const features = r.data.features || [];
  if (!features.length) {
    list.replaceChildren(h("li", { class: "gm-muted", text: "—" }));
    return;
  }
  list.replaceChildren(
    ...features.map((f) => {
      const p = f.properties;
      return h(
        "li",
        { "data-case": p.code, "data-status": p.status },
        h("strong", { text: p.category ? p.category.label || p.category.name : p.code }),
        h("span", { class: "gm-muted", text: `${p.status_label} · ${p.code} · ${timeText(p.reported_at)}` }),
      );
    }),
  );
}

// Read when the report tab is shown, after a report is sent (the queue empties) and once a minute.
document.getElementById("tab-report")?.addEventListener("click", loadMine);
const queue = $("queue");
if (queue) new MutationObserver(() => setTimeout(loadMine, 500)).observe(queue, { childList: true });
setInterval(loadMine, 60000);
loadMine();
