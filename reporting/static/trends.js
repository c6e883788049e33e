// Trends panel: receipts per day, letters per day and the unresolved backlog per stage at the
// end of each day, from GET /trends (the record, reporting/trends.py). Drawn as inline SVG
// like the dashboard's other charts (the page's CSP allows no other origin and no inline
// style), with the same figures in a table. A day's receipts (or letters) column opens the
// complaints received (or written to) that day (workqueue.js lists whatever has data-list). ?days=N and ?as_of=INSTANT on the
// page pass through. Same token as the dashboard (sessionStorage); values go in as text.
"use strict";

(function () {
  const TOKEN_KEY = "complaints-ops-token";
  const REFRESH_MS = 60000;  // a read of the database: once a minute is plenty for a trend
  const SVG = "http://www.w3.org/2000/svg";
  const STAGES = [
    ["received", "Received"], ["immediate", "Immediate"], ["senior_manager", "Senior manager"],
    ["reopened", "Reopened"], ["eight_week", "Eight weeks"], ["deadlock", "Deadlock"],
    ["ombudsman", "Ombudsman"],
  ];
  const $ = (id) => document.getElementById(id);
  const page = new URLSearchParams(window.location.search);
  const query = new URLSearchParams();
  for (const name of ["days", "as_of"]) if (page.get(name)) query.set(name, page.get(name));
  const TRENDS_URL = "/trends" + (query.toString() ? `?${query}` : "");
  let timer = null;
  let started = false;

  function svg(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function cell(name, text, attrs) {
    const node = document.createElement(name);
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    return node;
  }

  const W = 600, H = 170, LEFT = 34, BOTTOM = 20, TOP = 8;
  const short = (iso) => iso.slice(5);  // "2026-03-02" -> "03-02"

  // `width`: the chart's own units across; the full-width backlog chart is twice as wide as
  // the half-width ones, so that all three are drawn at about the same scale (text, points).
  function frame(container, days, max, width = W) {
    const chart = svg("svg", { viewBox: `0 0 ${width} ${H}`, role: "img",
      "aria-label": container.dataset.chart });
    const plotH = H - TOP - BOTTOM;
    chart.append(svg("line", { class: "axis", x1: LEFT, y1: TOP + plotH, x2: width,
      y2: TOP + plotH }));
    chart.append(svg("text", { class: "tick", x: LEFT - 4, y: TOP + 10, "text-anchor": "end" }, max));
    chart.append(svg("text", { class: "tick", x: LEFT - 4, y: TOP + plotH, "text-anchor": "end" }, 0));
    const step = (width - LEFT) / days.length;
    const every = Math.max(1, Math.ceil(days.length / 8));
    const last = days.length - 1;
    days.forEach((d, i) => {
      // Every `every`-th day and the last one, leaving out a label too close to the last's.
      if (i === last || (i % every === 0 && last - i >= every / 2)) {
        // The last day's label ends at the chart's edge rather than running past it.
        chart.append(svg("text", { class: "tick", x: i === last ? width : LEFT + step * (i + 0.5),
          y: H - 5, "text-anchor": i === last ? "end" : "middle" }, short(d)));
      }
    });
    return { chart, plotH, step };
  }

  // A count that opens its list (workqueue.js): the filter of GET /complaints[/behind].
  function listable(node, filter, label) {
    node.setAttribute("data-list", filter);
    node.setAttribute("data-list-label", label);
    node.setAttribute("role", "button");
    node.setAttribute("tabindex", "0");
    node.classList.add("listable");
    return node;
  }
  const receivedOn = (d) => [`received=${encodeURIComponent(d)}`, `Received on ${d}`];
  const lettersOn = (d) => [`count=letters&day=${encodeURIComponent(d)}`, `Letters issued on ${d}`];
  const stageOn = (key, label, d) => [`count=stage_on&state=${key}&day=${encodeURIComponent(d)}`,
    `${label} at the end of ${d}`];

  // One column per day; `list(day)` (optional) makes a column open that day's complaints.
  function columns(container, days, values, noun, list) {
    const max = Math.max(1, ...values);
    const { chart, plotH, step } = frame(container, days, max);
    days.forEach((d, i) => {
      const h = (plotH * values[i]) / max;
      const group = svg("g", { class: "day", "data-day": d, "data-value": values[i] });
      group.append(svg("title", {}, `${d}: ${values[i]} ${noun}`));
      group.append(svg("rect", { class: "hit", x: LEFT + step * i, y: TOP, width: step,
        height: plotH }));
      group.append(svg("rect", { class: "bar", x: LEFT + step * i + step * 0.15,
        y: TOP + plotH - h, width: step * 0.7, height: h }));
      if (list && values[i] > 0) listable(group, ...list(d));
      chart.append(group);
    });
    container.replaceChildren(chart);
  }

  // One line per stage (points carry their figures); stages never occupied are left out.
  function lines(container, days, backlog) {
    const shown = STAGES.filter(([key]) => (backlog[key] || []).some((v) => v > 0));
    const max = Math.max(1, ...shown.flatMap(([key]) => backlog[key]));
    const { chart, plotH, step } = frame(container, days, max, 2 * W);
    const legend = $("backlog-legend");
    legend.replaceChildren();
    for (const [key, label] of shown) {
      const series = svg("g", { class: `stage stage-${key}`, "data-stage": key });
      const points = backlog[key].map((v, i) =>
        [LEFT + step * (i + 0.5), TOP + plotH - (plotH * v) / max]);
      series.append(svg("polyline", { points: points.map((p) => p.join(",")).join(" ") }));
      points.forEach(([x, y], i) => {
        const point = svg("circle", { cx: x, cy: y, r: 4, "data-day": days[i],
          "data-value": backlog[key][i] });
        point.append(svg("title", {}, `${days[i]}: ${backlog[key][i]} ${label}`));
        if (backlog[key][i] > 0) listable(point, ...stageOn(key, label, days[i]));
        series.append(point);
      });
      chart.append(series);
      const swatch = cell("i", null, { class: `sw stage-${key}` });
      legend.append(swatch, document.createTextNode(`${label} `));
    }
    container.replaceChildren(chart);
  }

  function table(t) {
    const head = $("trends-head");
    head.replaceChildren(...["Day", "Receipts", "Letters", ...STAGES.map(([, l]) => l)]
      .map((text) => cell("th", text, { scope: "col" })));
    const rows = t.days.map((d, i) => {
      const row = cell("tr", null, { "data-day": d });
      // Each figure above zero opens the complaints behind it.
      const figure = (value, opens) => {
        const node = cell("td", value, { class: "num" });
        return value > 0 ? listable(node, ...opens) : node;
      };
      row.append(cell("th", d, { scope: "row" }), figure(t.receipts[i], receivedOn(d)),
        figure(t.letters[i], lettersOn(d)),
        ...STAGES.map(([key, label]) => figure((t.backlog[key] || [])[i] || 0,
          stageOn(key, label, d))));
      return row;
    });
    $("trends-rows").replaceChildren(...rows.reverse());  // the latest day first
  }

  function render(t) {
    $("trends").hidden = false;
    $("trends-window").textContent = `${t.days[0]} to ${t.days[t.days.length - 1]}, ` +
      `as of ${t.as_of.slice(0, 16).replace("T", " ")}`;
    columns($("chart-receipts"), t.days, t.receipts, "receipt(s)", receivedOn);
    columns($("chart-letters"), t.days, t.letters, "letter(s)", lettersOn);
    lines($("chart-backlog"), t.days, t.backlog);
    table(t);
    const sum = (values) => values.reduce((a, b) => a + b, 0);
    $("trends-note").textContent = `${sum(t.receipts)} receipt(s) and ${sum(t.letters)} ` +
      `letter(s) in ${t.days.length} day(s).`;
  }

  async function refresh() {
    clearTimeout(timer);
    const secret = sessionStorage.getItem(TOKEN_KEY);
    if (!secret) { started = false; return; }
    try {
      const response = await fetch(TRENDS_URL, { headers: { Authorization: `Bearer ${secret}` },
        cache: "no-store", credentials: "omit" });
      if (response.status === 401) { started = false; return; }  // dashboard.js asks again
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const trends = await response.json();
      if (!trends.days.length) return;  // a server without the record: no panel, no polling
      render(trends);
    } catch (error) {
      $("trends").hidden = false;
      $("trends-note").textContent = "The trends are not available (they need the record).";
    }
    timer = setTimeout(refresh, REFRESH_MS);
  }

  // The first good refresh of the dashboard (its token accepted) starts the trends.
  document.addEventListener("ops:live", () => {
    if (started) return;
    started = true;
    refresh();
  });
})();
