// Customer lookup: fetch the single view (GET /v1/customers/{id}) from this service and render it.
// Every value is written with textContent (never as HTML), so customer data cannot inject markup.
"use strict";

(function () {
  const form = document.getElementById("lookup");
  const input = document.getElementById("customer-id");
  const message = document.getElementById("message");
  const view = document.getElementById("view");

  // Parts of the single view in the order they are drawn; any other part follows.
  const PARTS = ["scores", "identities", "traits", "segments", "consents", "preferences", "recent_orders",
    "recent_contacts", "merges", "first_seen", "scores_refreshed_at"];

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  function label(key) {
    return String(key).replace(/_/g, " ");
  }

  function fmt(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "number") {
      if (!Number.isFinite(value)) return String(value);
      if (Number.isInteger(value)) return value.toLocaleString("en-US");
      return value.toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2});
    }
    if (typeof value === "boolean") return value ? "yes" : "no";
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function money(value) {
    return value.toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2});
  }

  function isPlain(v) {
    return v !== null && typeof v === "object" && !Array.isArray(v);
  }

  function num(v) {
    return typeof v === "number" && Number.isFinite(v) ? v : null;
  }

  // The headline numbers of the single view: its `scores` object (the CustomerView schema of
  // GET /v1/customers/{id}; null when the customer was never scored).
  function summary(data) {
    const s = isPlain(data.scores) ? data.scores : {};
    return {
      status: s.status ?? null,
      why: s.status_reason ?? null,
      clv: num(s.clv),
      lower: num(s.clv_lower),
      upper: num(s.clv_upper),
      alive: num(s.probability_alive),
    };
  }

  function metric(id, name, value, detail) {
    const box = el("div", {class: "metric"}, el("div", {class: "label"}, name), el("div", {class: "value", id: id}, value));
    if (detail) box.append(el("div", {class: "detail", id: id + "-detail"}, detail));
    return box;
  }

  function kvTable(obj) {
    const table = el("table", {class: "kv"});
    for (const [k, v] of Object.entries(obj)) {
      table.append(el("tr", {}, el("th", {}, label(k)), el("td", {}, render(v))));
    }
    return table;
  }

  function rowsTable(rows) {
    const keys = [];
    for (const r of rows) for (const k of Object.keys(r)) if (!keys.includes(k)) keys.push(k);
    const head = el("tr", {}, ...keys.map((k) => el("th", {class: "text"}, label(k))));
    const body = rows.map((r) => el("tr", {}, ...keys.map((k) => {
      const v = r[k];
      return el("td", {class: typeof v === "number" ? "num" : "text"}, fmt(v));
    })));
    return el("div", {class: "table"}, el("table", {class: "data"}, el("thead", {}, head), el("tbody", {}, ...body)));
  }

  function render(value) {
    if (Array.isArray(value)) {
      if (value.length === 0) return el("span", {class: "note"}, "none");
      if (value.every(isPlain)) return rowsTable(value);
      return document.createTextNode(value.map(fmt).join(", "));
    }
    if (isPlain(value)) {
      return Object.keys(value).length ? kvTable(value) : el("span", {class: "note"}, "none");
    }
    return document.createTextNode(fmt(value));
  }

  function show(id, data) {
    view.replaceChildren();
    const s = summary(data);
    const interval = s.lower !== null && s.lower !== undefined && s.upper !== null && s.upper !== undefined
      ? `95% interval ${money(s.lower)} to ${money(s.upper)}` : "";
    const cards = el("div", {class: "metrics", id: "summary"},
      metric("summary-status", "status", s.status ? label(s.status) : "unknown", s.why || ""),
      metric("summary-clv", "CLV (next 52 weeks)", s.clv !== null && s.clv !== undefined ? money(s.clv) : "not scored", interval),
      metric("summary-alive", "P(alive)", s.alive !== null && s.alive !== undefined ? `${(100 * s.alive).toFixed(1)}%` : "n/a"));
    view.append(el("h2", {}, `Customer ${id}`), cards);
    const grid = el("div", {class: "cards"});
    const first = PARTS.filter((k) => k in data);
    const keys = first.concat(Object.keys(data).filter((k) => !first.includes(k) && k !== "customer_id"));
    for (const k of keys) {
      const v = data[k];
      const wide = Array.isArray(v) && v.length > 0 && v.every(isPlain);  // a table: the full width
      grid.append(el("section", {class: wide ? "card wide" : "card", id: `part-${k}`}, el("h3", {}, label(k)), render(v)));
    }
    view.append(grid);
  }

  async function lookup(id) {
    message.textContent = "";
    view.replaceChildren();
    if (!id) return;
    message.textContent = "Looking up…";
    let response;
    try {
      response = await fetch(`/v1/customers/${encodeURIComponent(id)}`, {credentials: "same-origin",
        headers: {Accept: "application/json"}});
    } catch (err) {
      message.textContent = `The service did not answer: ${err}`;
      return;
    }
    let data = null;
    try { data = await response.json(); } catch (err) { data = null; }
    if (!response.ok) {
      const why = data && data.error ? data.error : response.statusText;
      message.textContent = response.status === 404 ? `No customer found for “${id}”: ${why}` : `Lookup failed (${response.status}): ${why}`;
      return;
    }
    message.textContent = "";
    show(id, data || {});
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const id = input.value.trim();
    const url = new URL(window.location.href);
    url.searchParams.set("id", id);
    window.history.replaceState(null, "", url.pathname + url.search);
    lookup(id);
  });

  const initial = new URL(window.location.href).searchParams.get("id");
  if (initial) {
    input.value = initial;
    lookup(initial);
  }
})();
