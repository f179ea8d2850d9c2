/* /dispatch/: the queue (sortable by deadline), one case's photos, place, duplicates nearby and ranked
   teams on the map with their reasons, and every action a dispatcher / shift leader / inspector may take.
   The server decides what is allowed; a refused action shows its message and changes nothing. */
(function () {
  "use strict";
  const { t, api, h, say } = GM;
  const $ = (id) => document.getElementById(id);
  const map = GM.map();
  const me = GM.config.user || {};
  const overlay = L.layerGroup().addTo(map);
  const queueLayer = L.layerGroup().addTo(map);
  let cases = [];
  let current = null;

  const DISPATCHERS = ["dispatcher", "shift_leader", "admin"];
  const LEADERS = ["shift_leader", "admin"];
  const CHECKERS = ["inspector", "admin"];
  // [status, label (message key, translated by t()), path, roles, body builder, needs note?, condition]
  const ACTIONS = [
    ["reported", "act_file", "file", DISPATCHERS, (n) => ({ note: n }), false],
    ["reported", "act_void", "void", DISPATCHERS, (n) => ({ reason: n }), true],
    ["handled", "act_check_pass", "check", CHECKERS, (n) => ({ passed: true, note: n }), false],
    ["handled", "act_check_fail", "check", CHECKERS, (n) => ({ passed: false, note: n }), true],
    ["checked", "act_close", "close", LEADERS, (n) => ({ note: n, hotline_reply: n }), false],
    ["handling", "act_extension_approve", "extension-decide", LEADERS, (n) => ({ approve: true, note: n }), false, (c) => c.extension_pending],
    ["handling", "act_extension_reject", "extension-decide", LEADERS, (n) => ({ approve: false, note: n }), true, (c) => c.extension_pending],
    ["filed", "act_park", "park", LEADERS, (n) => ({ reason: n }), true],
    ["dispatched", "act_park", "park", LEADERS, (n) => ({ reason: n }), true],
    ["handling", "act_park", "park", LEADERS, (n) => ({ reason: n }), true],
    ["parked", "act_resume", "resume", LEADERS, (n) => ({ note: n }), false],
  ];

  async function loadQueue() {
    const r = await api(`/api/cases/?status=${$("queue-filter").value}&page_size=200`);
    if (!r.ok) return say($("queue-msg"), r.message, "error");
    say($("queue-msg"), "");
    cases = r.data.features;
    renderQueue();
  }
  function renderQueue() {
    const dir = $("sort").dataset.dir === "asc" ? 1 : -1;
    const key = (f) => f.properties.deadline_at || f.properties.reported_at || "";
    cases.sort((a, b) => dir * key(a).localeCompare(key(b)));
    queueLayer.clearLayers();
    if (!cases.length) return $("queue").replaceChildren(h("li", { class: "gm-muted", text: t("no_cases") }));
    $("queue").replaceChildren(
      ...cases.map((f) => {
        const p = f.properties;
        const [lon, lat] = f.geometry.coordinates;
        L.circleMarker([lat, lon], { radius: 5, color: "#7f8c8d", fillOpacity: 0.6 }).on("click", () => select(f.id)).addTo(queueLayer);
        return h(
          "li",
          { "data-light": p.light, "data-case": p.code, "aria-selected": String(current && current.id === f.id), tabindex: 0, onclick: () => select(f.id), onkeydown: (e) => e.key === "Enter" && select(f.id) },
          h("strong", { text: `${(p.category && (p.category.label || p.category.name)) || ""} · ${p.status_label}` }),
          h("span", { class: "gm-muted", text: `${p.code} · ${p.source_label}` }),
          p.deadline_at ? h("span", { text: GM.countdown(p.deadline_at) }) : null,
        );
      }),
    );
  }
  $("queue-filter").addEventListener("change", loadQueue);
  $("sort").addEventListener("click", () => {
    const asc = $("sort").dataset.dir !== "asc";
    $("sort").dataset.dir = asc ? "asc" : "desc";
    $("sort").textContent = $("sort").textContent.replace(/[↑↓]/, asc ? "↑" : "↓");
    renderQueue();
  });

  async function select(id) {
    const r = await api(`/api/cases/${id}/`);
    if (!r.ok) return say($("queue-msg"), r.message, "error");
    current = { id, feature: r.data, version: r.data.properties.version };
    document.querySelectorAll("#queue li").forEach((li) => li.setAttribute("aria-selected", String(li.dataset.case === r.data.properties.code)));
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
    $("d-deadline").textContent = p.deadline_at ? `${GM.timeText(p.deadline_at)}(${GM.countdown(p.deadline_at)})` : "—";
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
  }

  function renderActions(p) {
    const role = me.role;
    const buttons = ACTIONS.filter(([st, , , roles, , , cond]) => st === p.status && roles.includes(role) && (!cond || cond(p))).map(
      ([, label, path, , body, needsNote]) =>
        h("button", {
          type: "button",
          class: "gm-primary",
          "data-action": path,
          text: t(label),
          onclick: () => {
            const note = $("d-note").value.trim();
            if (needsNote && !note) return say($("d-msg"), t("reason_required"), "error");
            act(path, body(note));
          },
        }),
    );
    $("d-actions").replaceChildren(...buttons);
  }

  async function act(path, body, headers) {
    const r = await api(`/api/cases/${current.id}/${path}/`, { method: "POST", body, headers });
    if (!r.ok) return say($("d-msg"), r.message, "error");
    $("d-note").value = "";
    say($("d-msg"), t("done"), "ok");
    current.version = r.data.properties.version;
    showCase(r.data);
    say($("d-msg"), t("done"), "ok");
    loadQueue();
  }

  async function loadCandidates(f) {
    const p = f.properties;
    const canDispatch = ["filed", "sent_back"].includes(p.status) && DISPATCHERS.includes(me.role);
    const [lon, lat] = f.geometry.coordinates;
    const r = await api(`/api/cases/${current.id}/candidates/`);
    const list = r.ok ? r.data.results || r.data.candidates || r.data : [];
    if (!Array.isArray(list) || !list.length) {
      // No ranking available: every visible team, so a case can still go out.
      const teams = await api("/api/teams/?page_size=500");
      const items = teams.ok ? teams.data.features.map((tf) => ({ team: { id: tf.id, name: tf.properties.name, code: tf.properties.code }, reasons: [], geometry: tf.geometry })) : [];
      return renderCandidates(items, canDispatch, p, lat, lon, t("no_candidates"));
    }
    // The ranking names teams; their last positions (to draw them) come from the team list.
    const positions = await teamPositions();
    renderCandidates(
      list.map((c) => ({ ...c, position: c.position || positions.get(c.team.id) })),
      canDispatch,
      p,
      lat,
      lon,
      "",
    );
  }
  let positionsCache = null;
  async function teamPositions() {
    if (!positionsCache || Date.now() - positionsCache.at > 30000) {
      const r = await api("/api/teams/?page_size=500");
      const map = new Map(r.ok ? r.data.features.filter((f) => f.geometry).map((f) => [f.id, f.geometry]) : []);
      positionsCache = { at: Date.now(), map };
    }
    return positionsCache.map;
  }

  function renderCandidates(list, canDispatch, p, lat, lon, note) {
    const arbitrate = p.status === "sent_back" && p.send_back_count >= 2;
    const items = list.map((c, i) => {
      const pos = c.position || (c.team && c.team.position) || c.geometry;
      if (pos && pos.coordinates && i < 5) {
        const [tl, ta] = pos.coordinates;
        L.polyline([[lat, lon], [ta, tl]], { color: i === 0 ? "#27ae60" : "#2e86de", weight: i === 0 ? 4 : 2, dashArray: i ? "4 6" : null }).addTo(overlay);
        L.marker([ta, tl], { icon: L.divIcon({ className: "", html: `<div class="gm-team">${i + 1}. ${c.team.name}</div>`, iconSize: null }) }).addTo(overlay);
      }
      const facts = [c.distance_m !== undefined && c.distance_m !== null ? `${Math.round(c.distance_m)} m` : null, c.workload !== undefined ? `${c.workload}` : null].filter(Boolean).join(" · ");
      return h(
        "li",
        { "data-team": c.team.code },
        h("strong", { text: `${i + 1}. ${c.team.name}` + (c.score !== undefined ? ` (${Number(c.score).toFixed(2)})` : "") }),
        facts ? h("span", { class: "gm-muted", text: facts }) : null,
        c.reasons && c.reasons.length ? h("ul", { class: "gm-reasons" }, c.reasons.map((x) => h("li", { text: x }))) : null,
        canDispatch
          ? h("button", {
              type: "button",
              class: "gm-primary",
              "data-action": arbitrate ? "arbitrate" : "dispatch",
              text: arbitrate ? t("arbitrate") : t("dispatch"),
              onclick: () => {
                const noteText = $("d-note").value.trim();
                if (arbitrate) return act("arbitrate", { team: c.team.id, note: noteText || t("arbitration_note") });
                act("dispatch", { team: c.team.id, note: noteText, expected_version: current.version });
              },
            })
          : null,
      );
    });
    $("d-cands").replaceChildren(...(note ? [h("li", { class: "gm-muted", text: note })] : []), ...items);
  }

  async function loadDuplicates(f) {
    const p = f.properties;
    const [lon, lat] = f.geometry.coordinates;
    const code = p.category && p.category.code;
    const r = await api(`/api/duplicates/?${new URLSearchParams({ category: code || "", lon, lat })}`);
    const raw = r.ok ? r.data.features || r.data.results || r.data : [];
    const items = (Array.isArray(raw) ? raw : []).map((d) => ({ geometry: d.geometry, ...(d.properties || d), id: d.id ?? (d.properties || d).id })).filter((d) => d.code !== p.code);
    if (!items.length) return $("d-dups").replaceChildren(h("li", { class: "gm-muted", text: "—" }));
    $("d-dups").replaceChildren(
      ...items.slice(0, 8).map((d) => {
        if (d.geometry && d.geometry.coordinates) L.circleMarker([d.geometry.coordinates[1], d.geometry.coordinates[0]], { radius: 7, color: "#f39c12" }).addTo(overlay);
        return h(
          "li",
          {},
          h("span", { text: `${d.code} · ${d.status_label || d.status || ""}` + (d.distance_m !== undefined ? ` · ${Math.round(d.distance_m)} m` : "") }),
          ["reported", "filed"].includes(p.status) && DISPATCHERS.includes(me.role)
            ? h("button", { type: "button", class: "gm-secondary", text: t("merge"), onclick: () => act("merge", { into: d.code, note: $("d-note").value }) })
            : null,
        );
      }),
    );
  }

  async function loadTimeline(id) {
    const r = await api(`/api/cases/${id}/events/?page_size=200`);
    if (!r.ok) return;
    $("d-timeline").replaceChildren(
      ...(r.data.results || []).map((e) =>
        h("li", { "data-type": e.type }, h("time", { text: GM.timeText(e.at) }), h("span", { text: `${e.type_label}${e.actor ? " · " + e.actor : ""}${e.note ? " · " + e.note : ""}` })),
      ),
    );
  }

  loadQueue();
  setInterval(loadQueue, 20000);
})();
