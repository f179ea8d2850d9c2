/* /stats/: the evaluation figures of /api/kpis/ as tiles, a trend, a comparison by group, a table, and a heat
   map of cases by cell. Every number is the API's; this page computes none (the export links ask the same
   endpoint for the same figures as CSV/Excel). */
import { api, config, fitDistrict, map, say } from "./common.js";

const form = document.getElementById("filters");
const msg = document.getElementById("stats-msg");
const labels = config.labels || {};
const columns = config.columns || [];
const colLabel = Object.fromEntries(columns.map((c) => [c.key, c.label]));
const groupLabel = Object.fromEntries(config.groups);
const periodLabel = Object.fromEntries(config.periods);
const fmt = (text, params) => Object.entries(params).reduce((s, [k, v]) => s.replace(`%(${k})s`, v), text || "");

form.start.value = config.start;
form.end.value = config.end;
const params = new URLSearchParams(location.search);
for (const name of ["start", "end", "area", "group_by", "period"]) if (params.get(name)) form[name].value = params.get(name);

const trend = echarts.init(document.getElementById("trend"));
const compare = echarts.init(document.getElementById("compare"));
window.addEventListener("resize", () => { trend.resize(); compare.resize(); });

function show(value, kind) {
  if (value === null || value === undefined || value === "") return "–";
  if (kind === "rate") return `${(value * 100).toFixed(1)}%`;
  if (kind === "float") return Number(value).toFixed(2);
  return String(value);
}
const pct = (v) => (v === null || v === undefined ? null : +(v * 100).toFixed(1));

function filters() {
  const q = { start: form.start.value, end: form.end.value };
  if (form.area.value) q.area = form.area.value;
  return q;
}

function query(extra) {
  return `${config.api}?${new URLSearchParams({ ...filters(), ...extra })}`;
}

const TILES = config.tiles || [];  // which figures head the page: the server's choice

function tiles(row) {
  const box = document.getElementById("tiles");
  box.replaceChildren(
    ...TILES.map((key) => {
      const kind = columns.find((c) => c.key === key)?.kind;
      const div = document.createElement("div");
      div.dataset.key = key;
      const b = document.createElement("b");
      b.textContent = show(row ? row[key] : null, kind);
      const span = document.createElement("span");
      span.textContent = colLabel[key];
      div.append(b, span);
      return div;
    }),
  );
}

function rateAxis() {
  return { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } };
}

function drawTrend(rows, period) {
  document.querySelector(".gm-stats-chart h2").textContent = fmt(labels.trend, { period: periodLabel[period] });
  trend.setOption(
    {
      title: rows.length ? { show: false } : { text: labels.empty, left: "center", top: "middle", textStyle: { color: "#7b8794", fontSize: 14 } },
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 44, right: 48, top: 72, bottom: 28 },
      xAxis: { type: "category", data: rows.map((r) => r.key) },
      yAxis: [{ type: "value", name: labels.cases, minInterval: 1 }, rateAxis()],
      series: [
        { name: colLabel.received, type: "bar", data: rows.map((r) => r.received) },
        { name: colLabel.closed, type: "bar", data: rows.map((r) => r.closed) },
        { name: colLabel.closure_rate, type: "line", yAxisIndex: 1, connectNulls: true, data: rows.map((r) => pct(r.closure_rate)) },
        { name: colLabel.on_time_closure_rate, type: "line", yAxisIndex: 1, connectNulls: true, data: rows.map((r) => pct(r.on_time_closure_rate)) },
        { name: colLabel.satisfied_rate, type: "line", yAxisIndex: 1, connectNulls: true, data: rows.map((r) => pct(r.satisfied_rate)) },
      ],
    },
    true,
  );
}

function drawCompare(rows, group) {
  document.getElementById("compare-title").textContent = fmt(labels.compare, { group: groupLabel[group] });
  const top = rows.filter((r) => r.key !== null).sort((a, b) => b.received - a.received).slice(0, 12);
  compare.setOption(
    {
      title: top.length ? { show: false } : { text: labels.empty, left: "center", top: "middle", textStyle: { color: "#7b8794", fontSize: 14 } },
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 44, right: 48, top: 72, bottom: 64 },
      xAxis: { type: "category", data: top.map((r) => r.name), axisLabel: { rotate: 30, interval: 0, width: 80, overflow: "truncate" } },
      yAxis: [{ type: "value", name: labels.cases, minInterval: 1 }, rateAxis()],
      series: [
        { name: colLabel.received, type: "bar", data: top.map((r) => r.received) },
        { name: colLabel.closed, type: "bar", data: top.map((r) => r.closed) },
        { name: colLabel.on_time_closure_rate, type: "line", yAxisIndex: 1, data: top.map((r) => pct(r.on_time_closure_rate)) },
        { name: colLabel.rework_rate, type: "line", yAxisIndex: 1, data: top.map((r) => pct(r.rework_rate)) },
      ],
    },
    true,
  );
}

function drawTable(rows, group) {
  document.getElementById("table-title").textContent = fmt(labels.table, { group: groupLabel[group] });
  const shown = columns.filter((c) => c.key !== "key");
  const table = document.getElementById("table");
  const head = document.createElement("thead");
  const tr = document.createElement("tr");
  for (const c of shown) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = c.label;
    tr.append(th);
  }
  head.append(tr);
  const body = document.createElement("tbody");
  for (const r of rows) {
    const line = document.createElement("tr");
    for (const c of shown) {
      const td = document.createElement("td");
      td.textContent = c.key === "name" ? r.name || labels.none : show(r[c.key], c.kind);
      line.append(td);
    }
    body.append(line);
  }
  if (!rows.length) {
    const line = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = shown.length;
    td.textContent = labels.empty;
    line.append(td);
    body.append(line);
  }
  table.replaceChildren(head, body);
}

let heat = null;
async function drawHeat() {
  const result = await api(`${config.heat}?${new URLSearchParams(filters())}`);
  if (!result.ok) return;
  const points = result.data.points;
  const max = Math.max(1, ...points.map((p) => p[2]));
  const m = map();
  if (heat) m.removeLayer(heat);
  heat = L.heatLayer(points, { radius: 14, blur: 12, max, minOpacity: 0.35 }).addTo(m);
}

async function load() {
  say(msg, "");
  const group = form.group_by.value;
  const period = form.period.value;
  for (const [id, format] of [["export-xlsx", "xlsx"], ["export-csv", "csv"]]) {
    document.getElementById(id).href = query({ group_by: group, format });
  }
  history.replaceState(null, "", `?${new URLSearchParams({ ...filters(), group_by: group, period })}`);
  const [total, byPeriod, byGroup] = await Promise.all([
    api(query({})),
    api(query({ group_by: period })),
    api(query({ group_by: group })),
  ]);
  const failed = [total, byPeriod, byGroup].find((r) => !r.ok);
  if (failed) {
    say(msg, failed.message, "error");
    return;
  }
  tiles(total.data.results[0]);
  drawTrend(byPeriod.data.results, period);
  drawCompare(byGroup.data.results, group);
  drawTable(byGroup.data.results, group);
  drawHeat();
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  load();
});
fitDistrict(8);
load();
