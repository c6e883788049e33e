// Operations work queue panel: the complaints at risk of an 8-week letter (GET /risk), search
// by reference or complaint id (GET /complaints/search) and one complaint's timeline
// (GET /complaints/{id}/timeline, each letter with its dispatch attempts), and the list behind
// any count of the dashboard (GET /complaints?state=|overdue=|received=, paginated). Same
// token as the dashboard (sessionStorage, this tab only); every value goes into the page as
// text, never as markup.
"use strict";

(function () {
  const TOKEN_KEY = "complaints-ops-token";
  const REFRESH_MS = 30000;
  const SHOWN = 25;
  const $ = (id) => document.getElementById(id);
  const DAY_MS = 86400000;

  function el(name, text, attrs) {
    const node = document.createElement(name);
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    return node;
  }

  async function getJson(path) {
    const secret = sessionStorage.getItem(TOKEN_KEY);
    if (!secret) throw Object.assign(new Error("no token"), { status: 401 });
    const response = await fetch(path, { headers: { Authorization: `Bearer ${secret}` },
      cache: "no-store", credentials: "omit" });
    if (!response.ok) throw Object.assign(new Error(`HTTP ${response.status}`),
      { status: response.status });
    return response.json();
  }

  const day = (instant) => (instant ? instant.slice(0, 10) : "");
  const when = (instant) => (instant ? instant.slice(0, 16).replace("T", " ") : "");

  function openButton(complaint) {
    const button = el("button", complaint.reference || complaint.complaint_id,
      { type: "button", class: "link-dark", "data-complaint": complaint.complaint_id });
    button.addEventListener("click", () => showTimeline(complaint.complaint_id));
    return button;
  }

  function renderRisk(board) {
    const body = $("wq-risk-rows");
    body.replaceChildren();
    const asOf = Date.parse(board.as_of);
    for (const c of board.complaints) {
      const row = el("tr");
      const cell = el("td");
      cell.append(openButton(c));
      row.append(cell, el("td", c.owner || "unassigned"), el("td", c.state),
        el("td", Math.floor((asOf - Date.parse(c.received_at)) / DAY_MS), { class: "num" }),
        el("td", c.next_deadline ? `${c.next_deadline.kind} ${when(c.next_deadline.due_at)}` : ""),
        el("td", day(c.eight_week_due)),
        el("td", `${Math.round(c.p_breach * 100)}%`, { class: "num" }));
      body.append(row);
    }
    $("wq-risk-note").textContent = `${board.total} complaint(s) can still breach; ` +
      `model ${board.model || "none"}, as of ${when(board.as_of)}` +
      (board.total > board.complaints.length ? `; the ${board.complaints.length} most at risk shown` : "");
  }

  async function refreshRisk() {
    try {
      const board = await getJson(`/risk?limit=${SHOWN}`);
      if (board.computed_at === null) {
        $("wq-risk-rows").replaceChildren();
        $("wq-risk-note").textContent = "The at-risk list is being computed.";
      } else {
        renderRisk(board);
      }
    } catch (error) {
      $("wq-risk-note").textContent = "The at-risk list is not available.";
    }
    setTimeout(refreshRisk, REFRESH_MS);
  }

  async function search(event) {
    event.preventDefault();
    const text = $("wq-query").value.trim();
    const list = $("wq-results");
    list.replaceChildren();
    if (!text) return;
    try {
      const found = await getJson(`/complaints/search?q=${encodeURIComponent(text)}`);
      if (!found.complaints.length) list.append(el("li", "No complaint has that reference or id."));
      for (const c of found.complaints) {
        const item = el("li");
        item.append(openButton(c), document.createTextNode(
          ` ${c.complaint_id}, ${c.state}, received ${day(c.received_at)}, ${c.owner || "unassigned"}`));
        list.append(item);
      }
      if (found.complaints.length === 1) showTimeline(found.complaints[0].complaint_id);
    } catch (error) {
      list.append(el("li", "Search is not available."));
    }
  }

  // The list behind a count: `current` is the filter shown (e.g. "state=received") and the
  // offset of its page, so previous/next page through it.
  // ?page_size=N on the page (1-500) changes the page's length (default 50).
  const PAGE = Math.min(500, Math.max(1,
    Number(new URLSearchParams(window.location.search).get("page_size")) || 50));
  let current = null;
  const pageAsOf = new URLSearchParams(window.location.search).get("as_of");
  const AS_OF = pageAsOf ? `&as_of=${encodeURIComponent(pageAsOf)}` : "";

  function listFromForm(event) {
    event.preventDefault();
    const by = $("wq-list-by").value;
    const chosenDay = $("wq-list-day").value;
    if (by === "received" && !chosenDay) {
      $("wq-list-rows").replaceChildren();
      $("wq-list-note").textContent = "Choose a day.";
      return;
    }
    const label = by === "received" ? `Received on ${chosenDay}`
      : $("wq-list-by").selectedOptions[0].parentElement.label + ": " + $("wq-list-by").selectedOptions[0].textContent;
    openList(by === "received" ? `received=${encodeURIComponent(chosenDay)}` : by, label);
  }

  function openList(filter, label) {
    current = { filter, label, offset: 0 };
    // Keep the form in step with what is shown.
    const [name, value] = filter.split("=");
    if (name === "received") {
      $("wq-list-by").value = "received";
      $("wq-list-day").value = decodeURIComponent(value);
    } else if ([...$("wq-list-by").options].some((o) => o.value === filter)) {
      $("wq-list-by").value = filter;
    }
    return showList();
  }

  async function showList() {
    const rows = $("wq-list-rows");
    rows.replaceChildren();
    $("wq-list-prev").hidden = true;
    $("wq-list-next").hidden = true;
    const { filter, label, offset } = current;
    try {
      // The stage, overdue-kind and day lists are GET /complaints; the other counts' lists
      // GET /complaints/behind. Both at the page's ?as_of when it has one, as its counts are.
      const path = filter.startsWith("count=") ? "/complaints/behind" : "/complaints";
      const found = await getJson(`${path}?${filter}${AS_OF}&offset=${offset}&limit=${PAGE}`);
      const shown = found.complaints.length;
      // Beyond the API's count bound `total` is a lower bound (total_exact false); the pages
      // by offset stop there, as the API's offset bound does.
      const count = found.total_exact === false ? `more than ${found.total}` : `${found.total}`;
      $("wq-list-note").textContent = `${label}: ${count} complaint(s)` +
        (found.total > shown || offset > 0
          ? `, ${shown ? offset + 1 : 0}-${offset + shown} shown` : "");
      for (const c of found.complaints) {
        const item = el("li");
        const extra = c.due_at ? `, ${c.kind ? `${c.kind} ` : ""}due ${when(c.due_at)}`
          : c.letter_kind ? `, letter ${c.letter_kind} issued ${when(c.issued_at)}`
          : c.receipt_at ? `, at ${when(c.receipt_at)}${c.channel ? ` by ${c.channel}` : ""}` : "";
        item.append(openButton(c), document.createTextNode(
          ` ${c.state}, ${c.owner || "unassigned"}${extra}`));
        rows.append(item);
      }
      $("wq-list-prev").hidden = offset === 0;
      $("wq-list-next").hidden = offset + shown >= found.total;
    } catch (error) {
      $("wq-list-note").textContent = "The list is not available.";
    }
  }

  function page(step) {
    if (!current) return;
    current.offset = Math.max(0, current.offset + step * PAGE);
    showList();
  }

  // Every count marked data-list (the stage and deadline bars, the remedy tile, a day's
  // receipts in the trends) opens its list, by click or by Enter/Space.
  function fromCount(event) {
    const count = event.target.closest("[data-list]");
    if (!count) return;
    if (event.type === "keydown" && event.key !== "Enter" && event.key !== " ") return;
    event.preventDefault();
    openList(count.dataset.list, count.dataset.listLabel || count.dataset.list);
    $("wq-list-card").scrollIntoView({ block: "nearest" });
  }

  // A letter's way to the customer: its delivery status and every attempt (channel, outcome,
  // when), from the record's deliveries and dispatches. Addresses are not shown.
  function dispatchList(letter) {
    const attempts = letter.dispatches || [];
    const box = el("ul", null, { class: "wq-dispatch" });
    box.append(el("li", `delivery: ${letter.delivery || "not recorded"}, ${attempts.length} attempt(s)`,
      { class: "wq-delivery" }));
    for (const d of attempts) {
      box.append(el("li", `attempt ${d.attempt}: ${d.channel} ${d.outcome} ${when(d.at)}`,
        { class: `wq-attempt wq-attempt-${d.outcome}` }));
    }
    return box;
  }

  async function showTimeline(complaintId) {
    const card = $("wq-timeline");
    card.hidden = false;
    $("wq-timeline-title").textContent = `Timeline: ${complaintId}`;
    const list = $("wq-timeline-rows");
    list.replaceChildren();
    try {
      const t = await getJson(`/complaints/${encodeURIComponent(complaintId)}/timeline`);
      $("wq-timeline-title").textContent =
        `Timeline: ${t.reference} (${t.complaint_id}), ${t.state}, owner ${t.owner || "unassigned"}`;
      const letters = new Map((t.letters || []).map((letter) => [letter.letter_id, letter]));
      for (const entry of t.timeline) {
        const label = entry.what === "letter" ? `letter: ${entry.type} (${entry.letter_id})`
          : entry.what === "due" ? `due: ${entry.type}`
          : entry.what === "deadline" ? `${entry.type}${entry.from !== entry.to ? ` → ${entry.to}` : ""}`
          : `${entry.type}${entry.from && entry.from !== entry.to ? ` (${entry.from} → ${entry.to})` : ` → ${entry.to}`}`;
        const row = el("li", null, { class: `wq-${entry.what}` });
        row.append(el("time", when(entry.at)), document.createTextNode(` ${label}`));
        if (entry.what === "letter" && letters.has(entry.letter_id)) row.append(dispatchList(letters.get(entry.letter_id)));
        list.append(row);
      }
    } catch (error) {
      list.append(el("li", error.status === 404 ? "Unknown complaint." : "The timeline is not available."));
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (!$("workqueue")) return;
    $("wq-search").addEventListener("submit", search);
    $("wq-list").addEventListener("submit", listFromForm);
    $("wq-list-prev").addEventListener("click", () => page(-1));
    $("wq-list-next").addEventListener("click", () => page(1));
    $("figures").addEventListener("click", fromCount);
    $("figures").addEventListener("keydown", fromCount);
    $("wq-close").addEventListener("click", () => { $("wq-timeline").hidden = true; });
    refreshRisk();
  });
})();
