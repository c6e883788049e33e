// Ops dashboard: polls /backlog, /returns/current and /delivery with the bearer token and draws inline SVG
// bar charts. No libraries, nothing from other origins (the page's CSP forbids both).
//
// The token: `complaints up` prints a link ending in #token=..., the fragment never leaves the
// browser (not sent to the server, not in logs or Referer). The page moves it to sessionStorage
// (this tab only, gone when the tab closes) and removes it from the address bar. Without one
// the page asks for it.
"use strict";

(function () {
  const REFRESH_MS = 5000;
  const TOKEN_KEY = "complaints-ops-token";
  const SVG = "http://www.w3.org/2000/svg";
  const STATES = [
    ["received", "Received"], ["immediate", "Immediate"], ["senior_manager", "Senior manager"],
    ["reopened", "Reopened"], ["eight_week", "Eight weeks"], ["deadlock", "Deadlock"],
    ["ombudsman", "Ombudsman"], ["resolved", "Resolved"], ["closed", "Closed"],
    ["duplicate", "Duplicate"],
  ];
  const UNRESOLVED = ["received", "immediate", "senior_manager", "reopened", "eight_week", "deadlock", "ombudsman"];
  const KINDS = [
    ["acknowledgement", "Acknowledgement"], ["progress_update", "Progress update"],
    ["senior_manager_review", "Senior manager review"], ["deadlock_letter", "Deadlock letter"],
    ["eight_week", "Eight weeks"], ["remedy", "Ombudsman remedy"],
    ["referral_window", "Referral window"],
  ];
  const TYPES = {
    B5: "Debt (non-PPM)", B6: "Debt (PPM)", B7: "Sales direct", B8: "Sales third party",
    B9: "Customer service", B10: "Feed-in tariffs", B11: "Payment", B12: "Pricing",
    B13: "Billing", B14: "Billing (smart)", B15: "Switching", B16: "Switching (smart credit)",
    B17: "Switching (smart PPM)", B18: "Meter (classic credit)", B19: "Meter (smart credit)",
    B20: "Meter (classic PPM)", B21: "Meter (smart PPM)", B22: "Other",
  };
  const CHANNELS = [
    ["telephone", "Telephone"], ["in_person", "In person"], ["letter", "Letter"],
    ["email", "Email"], ["webform", "Web form"], ["webchat", "Webchat"],
    ["social_media", "Social media"],
  ];

  const $ = (id) => document.getElementById(id);
  let timer = null;
  // ?month=YYYY-MM, ?quarter=YYYY-Qn and ?as_of=INSTANT on the page pass through to the API:
  // a past month, or the backlog as it would stand at another instant.
  const page = new URLSearchParams(window.location.search);
  const pick = (names) => {
    const chosen = new URLSearchParams();
    for (const name of names) if (page.get(name)) chosen.set(name, page.get(name));
    const text = chosen.toString();
    return text ? `?${text}` : "";
  };
  const BACKLOG_URL = "/backlog" + pick(["as_of"]);
  const RETURNS_URL = "/returns/current" + pick(["month", "quarter", "as_of"]);
  const DELIVERY_URL = "/delivery";
  const SUBMISSIONS_URL = "/submissions/due" + pick(["as_of"]);

  function token() {
    const match = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
    if (match) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function el(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Horizontal bars: rows = [{label, title, values: [{value, cls}]}]; values side by side.
  function barChart(container, rows) {
    const labelWidth = 205, valueWidth = 56, rowHeight = 24, width = 600;
    const series = Math.max(1, ...rows.map((r) => r.values.length));
    const max = Math.max(1, ...rows.flatMap((r) => r.values.map((v) => v.value)));
    const plot = width - labelWidth - valueWidth;
    const svg = el("svg", { viewBox: `0 0 ${width} ${rows.length * rowHeight + 4}`,
      role: "img", "aria-label": container.dataset.chart });
    rows.forEach((row, i) => {
      const y = i * rowHeight + 2;
      const group = el("g", { class: "row", "data-key": row.key });
      if (row.list) {
        // A count that opens the complaints behind it (workqueue.js listens for these).
        group.setAttribute("data-list", row.list);
        group.setAttribute("data-list-label", row.listLabel || row.label);
        group.setAttribute("role", "button");
        group.setAttribute("tabindex", "0");
        group.classList.add("listable");
      }
      group.appendChild(el("title", {}, row.title || row.label));
      group.appendChild(el("text", { x: 0, y: y + 16 }, row.label));
      group.appendChild(el("rect", { class: "track", x: labelWidth, y: y + 3, width: plot,
        height: rowHeight - 6, rx: 2 }));
      const thickness = (rowHeight - 6) / series;
      row.values.forEach((v, j) => {
        const w = v.value > 0 ? Math.max(2, (plot * v.value) / max) : 0;
        const bar = el("rect", { class: `bar ${v.cls || ""}`, x: labelWidth,
          y: y + 3 + j * thickness, width: w, height: thickness, rx: 2, "data-value": v.value });
        if (v.list) {  // this bar's own list (a click on it, not on the row, opens it)
          bar.setAttribute("data-list", v.list);
          bar.setAttribute("data-list-label", v.listLabel);
        }
        group.appendChild(bar);
      });
      const shown = row.values.map((v) => v.value).join(" / ");
      group.appendChild(el("text", { class: "value", x: width - valueWidth + 6, y: y + 16 }, shown));
      svg.appendChild(group);
    });
    container.replaceChildren(svg);
  }

  function sum(values) { return values.reduce((a, b) => a + b, 0); }

  function renderDelivery(backlog, delivery) {
    // (v2) Letters waiting for delivery, and the placeholder pause with the keys it names.
    const waiting = backlog.undelivered_letters || 0;
    $("tile-undelivered").textContent = waiting;
    $("tile-undelivered").classList.toggle("alert", waiting > 0 && delivery.paused);
    $("delivery-paused").hidden = !delivery.paused;
    $("delivery-paused").textContent = delivery.paused ? delivery.message : "";
  }

  function render(backlog, returns) {
    const month = returns.month;
    barChart($("chart-states"), STATES.map(([key, label]) => ({
      key, label, list: `state=${key}`, listLabel: `In stage: ${label}`,
      values: [{ value: backlog.by_state[key] || 0 }] })));
    barChart($("chart-deadlines"), KINDS.map(([key, label]) => ({
      key, label, list: `overdue=${key}`, listLabel: `Deadline overdue: ${label}`, values: [
        { value: backlog.overdue[key] || 0, cls: "bar-overdue" },
        { value: backlog.due_within_5_working_days[key] || 0, cls: "bar-soon",
          list: `count=due_soon&kind=${key}`, listLabel: `Due within 5 working days: ${label}` },
      ] })));
    barChart($("chart-types"), Object.keys(TYPES).map((code) => ({
      key: code, label: `${code} ${TYPES[code]}`,
      list: `count=received_month&month=${month.period}&category=${code}`,
      listLabel: `Received in ${month.period}, ${code} ${TYPES[code]}`,
      values: [{ value: month.items[code] || 0 }] })));
    barChart($("chart-channels"), CHANNELS.map(([key, label]) => ({
      key, label, list: `count=received_month&month=${month.period}&channel=${key}`,
      listLabel: `Received in ${month.period} by ${label.toLowerCase()}`,
      values: [{ value: month.receipts_by_channel[key] || 0 }] })));
    $("tile-month").dataset.list = `count=received_month&month=${month.period}`;
    $("tile-month").dataset.listLabel = `Received in ${month.period}`;
    $("title-types").textContent = `Receipts in ${month.period} by type`;
    $("title-channels").textContent = `Receipts in ${month.period} by channel`;
    $("tile-month-label").textContent = `Received in ${month.period}`;
    const overdue = sum(Object.values(backlog.overdue));
    $("tile-open").textContent = sum(UNRESOLVED.map((s) => backlog.by_state[s] || 0));
    $("tile-overdue").textContent = overdue;
    $("tile-overdue").classList.toggle("alert", overdue > 0);
    $("tile-remedy").textContent = backlog.overdue.remedy || 0;
    $("tile-remedy").classList.toggle("alert", (backlog.overdue.remedy || 0) > 0);
    $("tile-late-referrals").textContent = backlog.late_referrals || 0;
    $("tile-received").textContent = month.items.A1;
    $("tile-d1").textContent = month.items.A1
      ? `${Math.round((100 * month.items.A2) / month.items.A1)} %` : "–";
  }

  // (v2) Ofgem submissions panel: from /submissions/due (the database's calendar). Its own
  // request, so a server without a database still shows every other figure.
  const KIND_LABELS = { monthly: "Monthly return", quarterly: "Quarterly return",
    publication: "Website publication" };
  const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  function day(iso) {  // "2026-04-28" -> "Tue 28 Apr 2026", whatever the browser's locale
    const [y, m, d] = iso.split("-").map(Number);
    const weekday = new Date(Date.UTC(y, m - 1, d)).getUTCDay();
    return `${DAYS[weekday]} ${d} ${MONTHS[m - 1]} ${y}`;
  }
  function obligation(e) { return `${KIND_LABELS[e.kind] || e.kind} ${e.period}`; }

  function renderSubmissions(s) {
    $("sub-status").textContent = `as of ${s.as_of}: ${s.counts.submitted} submitted, `
      + `${s.counts.due} due, ${s.counts.overdue} overdue, `
      + `${s.counts.resubmission_needed} needing resubmission`;
    $("sub-next").textContent = s.next_due
      ? `${obligation(s.next_due)} due ${day(s.next_due.due)}` : "nothing due";
    $("sub-overdue").textContent = s.overdue.length;
    $("sub-overdue").classList.toggle("alert", s.overdue.length > 0);
    $("sub-resubmit").textContent = s.resubmission_needed.length;
    $("sub-resubmit").classList.toggle("alert", s.resubmission_needed.length > 0);
    const items = [
      ...s.overdue.map((e) => ["overdue", `Overdue: ${obligation(e)} (due ${day(e.due)})`]),
      ...s.resubmission_needed.map((e) => ["resubmit",
        `Resubmission needed: ${obligation(e)} (submitted as ${e.submission_id})`]),
    ];
    $("sub-list").replaceChildren(...items.map(([cls, text]) => {
      const li = document.createElement("li");
      li.className = cls;
      li.textContent = text;
      return li;
    }));
  }

  async function refreshSubmissions(secret) {
    try {
      renderSubmissions(await getJson(SUBMISSIONS_URL, secret));
    } catch (error) {
      if (error.status === 401) throw error;
      $("sub-status").textContent = error.status === 503
        ? "The submissions calendar is not available here (no database)."
        : "The submissions calendar could not be read.";
    }
  }

  function setStatus(text, cls) {
    const pill = $("status");
    pill.textContent = text;
    pill.className = `pill ${cls}`;
  }

  function showLogin(message) {
    clearTimeout(timer);
    $("figures").hidden = true;
    $("forget").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    setStatus("token needed", "pill-wait");
  }

  async function getJson(path, secret) {
    const response = await fetch(path, { headers: { Authorization: `Bearer ${secret}` },
      cache: "no-store", credentials: "omit" });
    if (response.status === 401) throw Object.assign(new Error("unauthorised"), { status: 401 });
    if (response.status === 503) throw Object.assign(new Error("not ready"), { status: 503 });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.json();
  }

  async function refresh() {
    const secret = sessionStorage.getItem(TOKEN_KEY);
    if (!secret) return showLogin();
    try {
      const [backlog, returns, delivery] = await Promise.all([
        getJson(BACKLOG_URL, secret), getJson(RETURNS_URL, secret),
        getJson(DELIVERY_URL, secret)]);
      $("login").hidden = true;
      $("figures").hidden = false;
      $("forget").hidden = false;
      render(backlog, returns);
      renderDelivery(backlog, delivery);
      setStatus("live", "pill-ok");
      // The token is good: the panels that read the record (trends.js) may load.
      document.dispatchEvent(new CustomEvent("ops:live"));
      $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
      await refreshSubmissions(secret);  // after the live figures: it reads the database
    } catch (error) {
      if (error.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        return showLogin("That token was not accepted.");
      }
      setStatus(error.status === 503 ? "aggregator recovering" : "unreachable", "pill-bad");
    }
    timer = setTimeout(refresh, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
      $("token").value = "";
      refresh();
    });
    $("forget").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin();
    });
    if (token()) refresh(); else showLogin();
  });
})();
