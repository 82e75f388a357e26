// Tables as tools: every <table class="data"> of the page gets a filter box, headers that sort on
// click and a "Download CSV" button. Shared by the report (inlined: it is one file) and the
// dashboard (/static/tables.js, no inline script). Vanilla JS, nothing loaded from anywhere.
//
// The table's unformatted data may follow it in a JSON data block (a script element of type
// application/json, class table-data: {"columns": [...], "rows": [[...], ...]}, rows in the table's order, as
// patron.report.html.table_data writes it); else a cell may carry its raw value in data-v and a
// header its column name in data-col (the customer page). Sorting uses the raw values (numbers as
// numbers), and the CSV holds them, so a downloaded table has the data, not its formatting.
// The CSV holds every row of the table, hidden by the filter or not, in the order shown. Text
// cells a spreadsheet would run as a formula (=, +, -, @, tab, CR first, and not only a number)
// get a leading apostrophe, as patron's CSV files do (patron.data.outputs.guard_text).
"use strict";

(function () {
  const RISKY = /^[=+\-@\t\r]/;
  const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
  let serial = 0;

  const DATA = new WeakMap();  // <tr> -> its row of the table's JSON data
  const COLUMNS = new WeakMap();  // <table> -> column names of its JSON data

  function value(cell) {
    const row = DATA.get(cell.parentNode);
    if (row !== undefined && cell.cellIndex < row.length) return row[cell.cellIndex];
    return cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent.trim();
  }

  function raw(cell) {
    const v = value(cell);
    if (v === null || v === undefined) return "";
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }

  function attachData(table) {
    const holder = table.closest(".table") || table.parentNode;
    const block = holder ? holder.querySelector(":scope > script.table-data") : null;
    if (!block) return;
    let data;
    try { data = JSON.parse(block.textContent); } catch (err) { return; }
    const rows = bodyRows(table);
    if (!data || !Array.isArray(data.rows) || data.rows.length !== rows.length) return;
    rows.forEach((tr, i) => DATA.set(tr, data.rows[i]));
    if (Array.isArray(data.columns)) COLUMNS.set(table, data.columns);
  }

  function guard(text) {
    return RISKY.test(text) && !NUMBER.test(text) ? "'" + text : text;
  }

  function csvField(text) {
    const safe = guard(text);
    return /[",\r\n]/.test(safe) ? '"' + safe.replace(/"/g, '""') + '"' : safe;
  }

  function headers(table) {
    const row = table.tHead ? table.tHead.rows[0] : null;
    return row ? Array.from(row.cells) : [];
  }

  function bodyRows(table) {
    return table.tBodies.length ? Array.from(table.tBodies[0].rows) : [];
  }

  // The whole table as CSV text: header names (data-col, else the header text), then every row.
  function toCsv(table) {
    const names = COLUMNS.get(table);
    const lines = [headers(table).map((th, i) => csvField(names && i < names.length ? names[i]
      : th.getAttribute("data-col") || th.textContent.trim())).join(",")];
    for (const tr of bodyRows(table)) lines.push(Array.from(tr.cells).map((td) => csvField(raw(td))).join(","));
    return lines.join("\r\n") + "\r\n";
  }

  function numeric(th, rows, index) {
    if (th.classList.contains("num")) return true;
    if (th.classList.contains("text")) {
      // a column is numeric when every non-empty cell says so
      const cells = rows.map((tr) => tr.cells[index]).filter((td) => td && raw(td) !== "");
      return cells.length > 0 && cells.every((td) => td.classList.contains("num"));
    }
    return false;
  }

  function sortBy(table, index, th) {
    const rows = bodyRows(table);
    const asc = th.getAttribute("aria-sort") !== "ascending";
    const isNum = numeric(th, rows, index);
    const key = (tr) => {
      const td = tr.cells[index];
      const v = td ? value(td) : null;
      if (v === null || v === undefined || v === "") return null;
      if (isNum) {
        const n = typeof v === "number" ? v : Number(String(v).replace(/,/g, ""));
        return Number.isNaN(n) ? null : n;
      }
      return raw(td).toLowerCase();
    };
    const keyed = rows.map((tr, i) => ({tr, i, k: key(tr)}));
    keyed.sort((a, b) => {
      if (a.k === null || b.k === null) return a.k === b.k ? a.i - b.i : a.k === null ? 1 : -1;  // missing last
      const c = isNum ? a.k - b.k : a.k < b.k ? -1 : a.k > b.k ? 1 : 0;
      return (asc ? c : -c) || a.i - b.i;
    });
    for (const other of headers(table)) other.removeAttribute("aria-sort");
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    const body = table.tBodies[0];
    for (const {tr} of keyed) body.appendChild(tr);
  }

  function filterRows(table, text, count) {
    const needle = text.trim().toLowerCase();
    const rows = bodyRows(table);
    let shown = 0;
    for (const tr of rows) {
      const hit = !needle || tr.textContent.toLowerCase().includes(needle);
      tr.hidden = !hit;
      if (hit) shown += 1;
    }
    count.textContent = needle ? `${shown} of ${rows.length} rows` : `${rows.length} rows`;
  }

  // The download's file name (without .csv): the table's data-name, else its section id and the
  // heading above it; letters, digits, "_" and "-" only.
  function fileName(table) {
    let base = table.getAttribute("data-name");
    if (!base) {
      const section = table.closest("section, .card");
      let heading = null;
      for (let el = (table.closest(".table") || table).previousElementSibling; el; el = el.previousElementSibling) {
        if (/^H[1-4]$/.test(el.tagName)) { heading = el; break; }
      }
      base = [section && section.id, heading && heading.textContent].filter(Boolean).join("-");
    }
    return String(base || "table").toLowerCase().replace(/[^a-z0-9_]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 80) || "table";
  }

  function download(table) {
    const blob = new Blob([toCsv(table)], {type: "text/csv;charset=utf-8"});
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = fileName(table) + ".csv";
    link.style.display = "none";
    document.body.appendChild(link);
    link.click();
    setTimeout(() => { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
  }

  function enhance(table) {
    if (!table || table.dataset.tools === "on" || !table.tHead || !table.tBodies.length) return;
    table.dataset.tools = "on";
    attachData(table);
    serial += 1;
    const id = `table-${serial}`;
    const tools = document.createElement("div");
    tools.className = "table-tools";
    const filter = document.createElement("input");
    filter.type = "search";
    filter.className = "table-filter";
    filter.placeholder = "Filter rows";
    filter.setAttribute("aria-label", "Filter the rows of the table below");
    filter.setAttribute("aria-controls", id);
    const count = document.createElement("span");
    count.className = "table-count";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "table-csv";
    button.textContent = "Download CSV";
    button.title = "Every row of this table (also those the filter hides), as CSV";
    tools.append(filter, count, button);
    if (!table.id) table.id = id; else filter.setAttribute("aria-controls", table.id);
    const anchor = table.closest(".table") || table;
    anchor.parentNode.insertBefore(tools, anchor);
    filter.addEventListener("input", () => filterRows(table, filter.value, count));
    button.addEventListener("click", () => download(table));
    headers(table).forEach((th, index) => {
      th.classList.add("sortable");
      th.tabIndex = 0;
      th.title = "Sort by this column";
      const go = () => sortBy(table, index, th);
      th.addEventListener("click", go);
      th.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); } });
    });
    filterRows(table, "", count);
  }

  function enhanceAll(root) {
    for (const table of (root || document).querySelectorAll("table.data")) enhance(table);
  }

  window.patronTables = {enhance, enhanceAll, toCsv};
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => enhanceAll());
  else enhanceAll();
})();
