// Customer lookup: fetch the single view (GET /v1/customers/{id}) from this service and render it.
// Every value is written with textContent (never as HTML), so customer data cannot inject markup.
// Requests go to location.origin + path, never to a URL taken from location.href: a page opened
// with the key in its address (user info: key:@host/customers) has the credentials in its own URL, and browsers refuse fetch()
// to a URL with credentials; the key in the page's URL is sent as the Authorization header.
"use strict";

(function () {
  const form = document.getElementById("lookup");
  const input = document.getElementById("customer-id");
  const message = document.getElementById("message");
  const view = document.getElementById("view");

  // Parts of the single view in the order they are drawn; any other part follows.
  const PARTS = ["scores", "identities", "traits", "segments", "consents", "preferences", "recent_orders",
    "recent_contacts", "merges", "first_seen", "scores_refreshed_at"];
  // Parts shown in the title rather than in a card.
  const TITLE_PARTS = ["customer_id", "found_by"];
  // Words for the kinds of identifier a lookup can match (found_by.kind).
  const KINDS = {customer_id: "person id", user_id: "user id", anonymous_id: "anonymous id", email: "email",
    phone: "phone", identifier: "identifier"};

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

  // The raw value of a cell (data-v): what the tables script sorts on and writes to the CSV.
  function rawText(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }

  function rowsTable(rows, name) {
    const keys = [];
    for (const r of rows) for (const k of Object.keys(r)) if (!keys.includes(k)) keys.push(k);
    const numeric = (k) => rows.some((r) => typeof r[k] === "number") &&
      rows.every((r) => r[k] === null || r[k] === undefined || typeof r[k] === "number");
    const head = el("tr", {}, ...keys.map((k) => el("th", {class: numeric(k) ? "num" : "text", "data-col": k}, label(k))));
    const body = rows.map((r) => el("tr", {}, ...keys.map((k) => {
      const v = r[k];
      return el("td", {class: typeof v === "number" ? "num" : "text", "data-v": rawText(v)}, fmt(v));
    })));
    const table = el("table", {class: "data", "data-name": name || "table"}, el("thead", {}, head), el("tbody", {}, ...body));
    return el("div", {class: "table"}, table);
  }

  function render(value, name) {
    if (Array.isArray(value)) {
      if (value.length === 0) return el("span", {class: "note"}, "none");
      if (value.every(isPlain)) return rowsTable(value, name);
      return document.createTextNode(value.map(fmt).join(", "));
    }
    if (isPlain(value)) {
      return Object.keys(value).length ? kvTable(value) : el("span", {class: "note"}, "none");
    }
    return document.createTextNode(fmt(value));
  }

  // Who the view is about: a name from the traits, else their email, else the person id.
  function personName(data) {
    const t = isPlain(data.traits) ? data.traits : {};
    const text = (v) => (typeof v === "string" && v.trim() ? v.trim() : null);
    const full = [text(t.first_name) || text(t.firstName), text(t.last_name) || text(t.lastName)].filter(Boolean).join(" ");
    return text(t.name) || full || text(t.email) || String(data.customer_id ?? "");
  }

  function foundBy(id, data) {
    const f = isPlain(data.found_by) ? data.found_by : {kind: "identifier", identifier: id};
    if (f.kind === "customer_id") return `person id ${data.customer_id}`;  // looked up by the person id itself
    const kind = KINDS[f.kind] || label(f.kind || "identifier");
    return `person id ${data.customer_id} · found by ${kind} ${f.identifier ?? id}`;
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
    const name = personName(data);
    view.append(el("h2", {id: "person"}, name), el("p", {class: "subtitle", id: "found-by"}, foundBy(id, data)), cards);
    document.title = `${name} · Customers · patron`;
    const grid = el("div", {class: "cards"});
    const first = PARTS.filter((k) => k in data);
    const keys = first.concat(Object.keys(data).filter((k) => !first.includes(k) && !TITLE_PARTS.includes(k)));
    for (const k of keys) {
      const v = data[k];
      const wide = Array.isArray(v) && v.length > 0 && v.every(isPlain);  // a table: the full width
      grid.append(el("section", {class: wide ? "card wide" : "card", id: `part-${k}`}, el("h3", {}, label(k)),
        render(v, `${data.customer_id}-${k}`)));
    }
    view.append(grid);
    if (window.patronTables) window.patronTables.enhanceAll(view);
  }

  // The key in the page's own URL (its user info, key:@host), as the Authorization header the service
  // reads (HTTP Basic, the key as the user name); none when the URL holds no credentials (the
  // browser then sends the credentials it was given at the 401 prompt).
  function authHeaders() {
    let here;
    try { here = new URL(window.location.href); } catch (err) { return {}; }
    if (!here.username && !here.password) return {};
    const user = decodeURIComponent(here.username);
    const pass = decodeURIComponent(here.password);
    return {Authorization: "Basic " + btoa(unescape(encodeURIComponent(`${user}:${pass}`)))};
  }

  // A URL of this service: its origin (never credentials) and the path.
  function api(path) {
    return new URL(path, window.location.origin).toString();
  }

  async function lookup(id) {
    message.textContent = "";
    view.replaceChildren();
    if (!id) return;
    message.textContent = "Looking up…";
    let response;
    try {
      response = await fetch(api(`/v1/customers/${encodeURIComponent(id)}`), {credentials: "same-origin",
        headers: {Accept: "application/json", ...authHeaders()}});
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
