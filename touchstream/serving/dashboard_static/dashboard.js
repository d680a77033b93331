// Touchstream dashboard: reads the query service's own JSON endpoints and draws them with Plotly.
//
// Why this shape: every panel is one KPI view (GET kpis/<view>) turned into one figure by a
// pure function, redrawn in place with Plotly.react on a timer (?refresh=N seconds, 0 = off), so
// zoom and legend choices survive a refresh. A view that does not exist yet (404) or cannot be
// read (400) shows "no data yet"; a failed refresh keeps the last plot and marks it stale.
// Personal values appear only in the 360 panel, from GET customers/<x>, for a searched customer;
// the URL keeps only the canonical customer id, never what was typed. Data is put in the page
// with textContent only (never as HTML). URLs are relative so the service can sit under a prefix.
"use strict";

const TIMELINE_LIMIT = 500;
const BASE_LAYOUT = { margin: { l: 60, r: 20, t: 10, b: 50 }, font: { size: 12 },
                      paper_bgcolor: "#fff", plot_bgcolor: "#fff", legend: { orientation: "h", y: -0.2 } };
const CONFIG = { responsive: true, displaylogo: false };

// Times arrive as ISO text with an offset, which Plotly does not read: shown as UTC wall-clock time.
const utc = (text) => {
  const d = new Date(text);
  return text && !Number.isNaN(d.getTime()) ? d.toISOString().slice(0, 23).replace("T", " ") : text;
};
const minute = (text) => (text ? `${utc(text).slice(0, 16)} UTC` : "?");
// A series keeps its colour across refreshes and panels, whatever order the rows come in.
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#843c39", "#5254a3", "#6b6ecf"];
const colours = new Map();
const colorOf = (key) => {
  if (!colours.has(key)) colours.set(key, PALETTE[colours.size % PALETTE.length]);
  return colours.get(key);
};
const num = (v) => (v === null || v === undefined || v === "" ? null : Number(v));
// A count axis: whole numbers only (Plotly would tick 0.2, 0.4 ... for small counts).
const countAxis = (top, title) => ({ title: { text: title }, rangemode: "tozero", ...(top <= 8 ? { dtick: 1 } : {}) });
const byOrder = (key) => (rows) => rows.slice().sort((a, b) => num(a[key]) - num(b[key]));

// Rows grouped by one column, groups in name order (stable traces, so legend choices survive a refresh).
function groupBy(rows, key) {
  const groups = new Map();
  for (const row of rows) {
    const k = row[key] === null || row[key] === undefined ? "(none)" : String(row[key]);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(row);
  }
  return [...groups.entries()].sort(([a], [b]) => a.localeCompare(b));
}

// share: "initial" where each stage counts what reached it (complaints), "total" where each row is
// where things are now (journey stages), so the percentages read right.
function funnel(rows, stage, count, order, share) {
  const sorted = byOrder(order)(rows);
  return { data: [{ type: "funnel", y: sorted.map((r) => r[stage]), x: sorted.map((r) => num(r[count])),
                    textinfo: `value+percent ${share}` }],
           layout: { margin: { l: 130, r: 20, t: 10, b: 30 } } };
}

// One entry per KPI view the page reads: the view's name, the plot's element id, rows -> figure.
const KPI_PANELS = [
  { view: "channel_mix", plot: "plot-channel-mix", figure: (rows) => {
      const sorted = rows.slice().sort((a, b) => num(b.events) - num(a.events));
      return { data: [{ type: "pie", hole: 0.45, sort: false, labels: sorted.map((r) => r.channel),
                        values: sorted.map((r) => num(r.events)), textinfo: "label+percent",
                        textposition: "inside", insidetextorientation: "horizontal",
                        marker: { colors: sorted.map((r) => colorOf(`channel:${r.channel}`)) },
                        customdata: sorted.map((r) => num(r.customers)),
                        hovertemplate: "%{label}: %{value} events, %{customdata} customers<extra></extra>" }],
               layout: { uniformtext: { minsize: 10, mode: "hide" }, margin: { l: 10, r: 10, t: 10, b: 10 },
                         legend: { orientation: "v", x: 1, y: 0.5 } } };
    } },
  { view: "journey_funnel", plot: "plot-journey-funnel",
    figure: (rows) => funnel(rows, "stage", "customers", "stage_order", "total") },
  { view: "complaint_funnel", plot: "plot-complaint-funnel",
    figure: (rows) => funnel(rows, "stage", "cases", "stage_order", "initial") },
  { view: "sla_breaches_daily", plot: "plot-sla-breaches", figure: (rows) => {
      const data = [];
      const sorted = rows.slice().sort((a, b) => String(a.day).localeCompare(String(b.day)));
      for (const [kind, group] of groupBy(sorted, "clock_kind")) {
        data.push({ type: "bar", name: kind, x: group.map((r) => r.day), y: group.map((r) => num(r.breaches)),
                    marker: { color: colorOf(`clock:${kind}`) } });
      }
      const perDay = new Map();
      for (const r of rows) perDay.set(r.day, (perDay.get(r.day) || 0) + num(r.breaches));
      return { data, layout: { barmode: "stack", xaxis: { type: "date" },
                               yaxis: countAxis(Math.max(0, ...perDay.values()), "breached clocks") } };
    } },
  { view: "fcr_by_channel", plot: "plot-fcr", figure: (rows) => {
      const rates = rows.map((r) => num(r.fcr_rate));
      // fcr_rate as a fraction (0..1) or as a percentage: the axis follows what the view returns.
      const fraction = rates.every((v) => v === null || v <= 1);
      return { data: [{ type: "bar", x: rows.map((r) => r.channel), y: rates,
                        text: rows.map((r) => `${num(r.fcr) ?? 0} of ${num(r.judged) ?? 0} judged`),
                        customdata: rows.map((r) => num(r.cases)),
                        hovertemplate: "%{x}: %{y} (%{text}; %{customdata} cases)<extra></extra>" }],
               layout: { yaxis: { title: { text: "FCR rate" }, rangemode: "tozero",
                                  ...(fraction ? { tickformat: ".0%", range: [0, 1] } : {}) } } };
    } },
  { view: "contact_pressure_distribution", plot: "plot-contact-pressure", figure: (rows) => {
      const sorted = byOrder("bucket_order")(rows);
      return { data: [{ type: "bar", x: sorted.map((r) => String(r.bucket)), y: sorted.map((r) => num(r.customers)) }],
               layout: { xaxis: { type: "category", title: { text: "company-initiated contacts per 30 days" } },
                         yaxis: countAxis(Math.max(0, ...sorted.map((r) => num(r.customers))), "customers") } };
    } },
];

// A company message sent without the customer's permission (a contact_without_consent finding) is ringed in
// red on the touchmap: the finding's evidence ends with the message's event.
const WITHOUT_CONSENT = "contact_without_consent";
function unpermitted(findings) {
  const ids = new Map();
  for (const f of findings || []) {
    const evidence = f.evidence || [];
    if (f.kind === WITHOUT_CONSENT && evidence.length) ids.set(evidence[evidence.length - 1], f.subject);
  }
  return ids;
}

function touchmapFigure(interactions, findings) {
  const flagged = unpermitted(findings);
  const data = [];
  for (const [who, group] of groupBy(interactions, "initiated_by")) {
    const without = group.map((i) => flagged.get(i.event_id));
    data.push({ type: "scatter", mode: "markers", name: `initiated by ${who}`,
                x: group.map((i) => utc(i.occurred_at)), y: group.map((i) => i.channel),
                text: group.map((i, n) => `${i.event_type} (${i.content})` +
                                          (without[n] ? ` · without consent (${without[n]})` : "")),
                marker: { size: 9, opacity: 0.8, symbol: who === "customer" ? "circle" : "diamond",
                          color: who === "customer" ? "#1f77b4" : who === "company" ? "#ff7f0e" : colorOf(`who:${who}`),
                          line: { color: without.map((s) => (s ? "#d62728" : "rgba(0,0,0,0)")),
                                  width: without.map((s) => (s ? 3 : 0)) } },
                hovertemplate: "%{x} UTC<br>%{y}: %{text}<extra></extra>" });
  }
  return { data, layout: { xaxis: { type: "date", title: { text: "UTC" } }, yaxis: { type: "category", categoryorder: "category ascending" },
                           legend: { orientation: "h", x: 0, y: 1.12 }, margin: { l: 90, r: 20, t: 30, b: 50 } } };
}

// ---- fetching -------------------------------------------------------------------------------

const KEY_STORE = "touchstream.apiKey";
const apiKey = () => sessionStorage.getItem(KEY_STORE);

async function getJson(path) {
  const key = apiKey();
  const response = await fetch(path, { cache: "no-store", headers: key ? { "X-API-Key": key } : {} });
  if (response.status === 401 || response.status === 403) {
    document.getElementById("key-form").hidden = false;
    showBanner(`The query service wants an API key with read access (HTTP ${response.status}).`);
  }
  return { status: response.status, body: response.ok ? await response.json() : null };
}

function showBanner(text) {
  const banner = document.getElementById("banner");
  banner.textContent = text || "";
  banner.hidden = !text;
}

function draw(plotId, figure) {
  const el = document.getElementById(plotId);
  const empty = el.parentElement.querySelector(".empty");
  const points = figure ? figure.data.reduce((n, t) => n + (t.values || t.x || []).length, 0) : 0;
  if (!points) {
    Plotly.purge(el);
    el.hidden = true;
    empty.hidden = false;
    return;
  }
  empty.hidden = true;
  el.hidden = false;
  const layout = { ...BASE_LAYOUT, ...figure.layout, uirevision: plotId };
  Plotly.react(el, figure.data, layout, CONFIG);
}

async function refreshPanel(panel) {
  const { status, body } = await getJson(`kpis/${encodeURIComponent(panel.view)}`);
  if (body) draw(panel.plot, panel.figure(body.rows || []));
  else if (status === 404 || status === 400) draw(panel.plot, null);   // the view does not exist yet
  else throw new Error(`kpis/${panel.view}: HTTP ${status}`);
}

// ---- the customer 360 ---------------------------------------------------------------------------

let currentCustomer = null;
let customerSeq = 0;   // bumped by each search: a slower, older answer must not overwrite a newer one

const money = (amounts) => Object.entries(amounts || {}).map(([cur, v]) => `${cur} ${v}`).join(", ") || "0";

function summaryRows(view) {
  const c = view.commerce || {}, complaints = view.complaints || {};
  return [
    ["customer", `${view.customer_id} (${view.events} events)`],
    ["seen", `${minute(view.first_seen)} .. ${minute(view.last_seen)}`],
    ["journey", `${(view.journey || {}).stage || "?"} since ${minute((view.journey || {}).since)}`],
    ["identifiers", (view.identifiers || []).map((i) => `${i.kind}=${i.value} (${i.trust})`).join(", ")],
    ["channels", (view.channels || []).map((ch) => `${ch.channel} ${ch.contacts}`).join(", ")],
    ["preferred", (view.pmp || []).slice(0, 3).map((p) => `${p.rank}. ${p.channel}`).join(", ")],
    ["commerce", `orders ${c.orders ?? 0}, revenue ${money(c.revenue_to_date)}, balance due ${money(c.balance_due)}`],
    ["complaints", `open ${complaints.open_count ?? 0} of ${complaints.total ?? 0}`],
    ["consents", (view.consents || []).map((c) => `${c.for_channel}:${c.purpose} ${c.status} ${minute(c.at)}`)
                   .join(", ") || "none on record"],
    ["findings", findingsText(view.findings)],
  ];
}

// "kind: subject", a repeated one once with its count (each e-mail after a withdrawal is its own finding).
function findingsText(findings) {
  const counts = new Map();
  for (const f of findings || []) {
    const key = `${f.kind}: ${f.subject}`;
    counts.set(key, (counts.get(key) || 0) + 1);
  }
  return [...counts].map(([key, n]) => (n > 1 ? `${key} (${n}x)` : key)).join("; ") || "none";
}

function showSummary(view) {
  document.getElementById("customer-id").textContent = view.customer_id;
  const dl = document.getElementById("customer-summary");
  dl.replaceChildren();
  for (const [label, value] of summaryRows(view)) {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = label;
    dd.textContent = value;
    dl.append(dt, dd);
  }
}

function customerMessage(text) {
  const p = document.getElementById("customer-message");
  p.textContent = text || "";
  p.hidden = !text;
}

async function loadCustomer(identifier) {
  const seq = customerSeq;
  const path = `customers/${encodeURIComponent(identifier)}`;
  const [found, timeline] = await Promise.all(
    [getJson(path), getJson(`${path}/timeline?limit=${TIMELINE_LIMIT}&order=asc`)]);
  if (seq !== customerSeq) return false;
  document.getElementById("customer").hidden = false;
  if (found.status === 404) {
    customerMessage("No customer with that id or identifier.");
    return false;
  }
  if (!found.body) throw new Error(`customer 360: HTTP ${found.status}`);
  customerMessage(timeline.body && timeline.body.truncated ? `Touchmap shows the first ${TIMELINE_LIMIT} interactions.` : "");
  showSummary(found.body);
  currentCustomer = found.body.customer_id;
  history.replaceState(null, "", `#customer=${encodeURIComponent(currentCustomer)}`);
  draw("plot-touchmap", touchmapFigure(timeline.body ? timeline.body.interactions : [], found.body.findings));
  return true;
}

async function search(event) {
  event.preventDefault();
  const text = document.getElementById("search-input").value.trim();
  if (!text) return;
  customerSeq += 1;
  currentCustomer = null;
  document.getElementById("customer-summary").replaceChildren();
  document.getElementById("customer-id").textContent = "";
  draw("plot-touchmap", null);
  try {
    await loadCustomer(text);
  } catch (err) {
    customerMessage(`Could not read the customer: ${err.message}`);
  }
}

// ---- refresh loop -------------------------------------------------------------------------------

const params = new URLSearchParams(location.search);
const period = Math.max(0, Number(params.get("refresh") ?? 5) || 0);
let refreshes = 0;

async function refresh() {
  const jobs = KPI_PANELS.map(refreshPanel);
  if (currentCustomer) jobs.push(loadCustomer(currentCustomer));
  const failed = (await Promise.allSettled(jobs)).filter((r) => r.status === "rejected");
  const status = document.getElementById("status");
  const every = period > 0 ? `refresh every ${period} s` : "auto-refresh off";
  status.textContent = `updated ${new Date().toLocaleTimeString()} · ${every}` +
    (failed.length ? ` · ${failed.length} panel(s) stale: ${failed[0].reason.message}` : "");
  status.classList.toggle("stale", failed.length > 0);
  document.body.dataset.refreshes = String(++refreshes);
}

function loop(first) {
  const next = () => { if (period > 0) setTimeout(loop, period * 1000, false); };
  if (document.hidden && !first) next();       // nobody is looking: no load on the service
  else refresh().finally(next);
}

function start() {
  if (typeof Plotly === "undefined") {
    showBanner("The charting library (static/plotly.min.js) did not load: is the plotly package installed?");
    document.getElementById("status").textContent = "no charts";
    return;
  }
  document.getElementById("search").addEventListener("submit", search);
  document.getElementById("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORE, document.getElementById("key-input").value.trim());
    document.getElementById("key-form").hidden = true;
    showBanner("");
    refresh();
  });
  document.addEventListener("visibilitychange", () => { if (!document.hidden && period > 0) refresh(); });
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("customer");
  if (fromHash) currentCustomer = fromHash;
  loop(true);
}

start();
