// The customer's own page: exchange the link's token (in the URL fragment, never sent to a server)
// for a session cookie, then draw what is held about the person and what they get back, and send
// their changes. Every value is written with textContent (never as HTML).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === true) node.setAttribute(k, "");
      else if (v !== false && v !== null && v !== undefined) node.setAttribute(k, String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  function say(text) {
    $("message").textContent = text;
  }

  function fmt(value) {
    if (value === null || value === undefined || value === "") return "—";
    if (typeof value === "number") {
      return Number.isInteger(value) ? value.toLocaleString("en-US")
        : value.toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2});
    }
    if (typeof value === "boolean") return value ? "yes" : "no";
    if (typeof value === "object") return JSON.stringify(value);
    const text = String(value);
    if (/^\d{4}-\d\d-\d\dT00:00:00(\.0+)?Z$/.test(text)) return text.slice(0, 10);  // a day
    return /^\d{4}-\d\d-\d\dT/.test(text) ? text.replace("T", " ").replace(/(\.\d+)?Z$/, " UTC") : text;
  }

  async function call(method, path, body) {
    const options = {method: method, credentials: "same-origin", headers: {}};
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) throw new Error((data && data.error) || ("the service answered " + response.status));
    return data;
  }

  function table(headers, rows) {
    const t = el("table", {});
    t.append(el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {scope: "col"}, h)))));
    const body = el("tbody", {});
    for (const r of rows) body.append(el("tr", {}, ...r.map((v) => el("td", {class: typeof v === "number" ? "num" : null}, fmt(v)))));
    t.append(body);
    return t;
  }

  function pairs(obj, id) {
    const dl = el("dl", {id: id});
    for (const [k, v] of Object.entries(obj)) dl.append(el("dt", {}, k.replace(/_/g, " ")), el("dd", {}, fmt(v)));
    return dl;
  }

  const KIND_WORDS = {anonymous_id: "device or browser ids", email: "email addresses kept only as a one-way hash",
    phone: "phone numbers"};

  function drawHeld(held) {
    const box = $("held-body");
    box.replaceChildren();
    const ids = held.identifiers;
    box.append(el("h3", {}, "Identifiers"), table(["kind", "value"], ids.shown.map((i) => [i.kind, i.value])));
    const counted = Object.entries(ids.counts).map(([k, n]) => `${n} ${KIND_WORDS[k] || k.replace(/_/g, " ")}`);
    if (counted.length) box.append(el("p", {class: "note", id: "identifier-counts"}, "Also: " + counted.join(", ") + "."));
    if (Object.keys(held.profile).length) box.append(el("h3", {}, "Profile"), pairs(held.profile, "profile"));
    const orders = held.orders;
    box.append(el("h3", {}, "Orders"));
    if (!orders.count) box.append(el("p", {class: "note"}, "No orders."));
    else {
      box.append(table(["currency", "orders", "refunds", "net spend", "first", "last"],
        orders.by_currency.map((r) => [r.currency || "—", r.orders, r.refunds, r.net_spend, r.first_order, r.last_order])));
      box.append(el("p", {class: "note"}, "Latest orders:"),
        table(["order", "when", "amount", "discount"], orders.recent.map((o) => [o.order_id, o.occurred_at, o.amount, o.discount])));
    }
    const c = held.contacts;
    box.append(el("h3", {}, "Messages we sent you this month"));
    const byChannel = Object.entries(c.by_channel);
    box.append(byChannel.length ? table(["channel", "messages"], byChannel) : el("p", {class: "note"}, "None."));
    box.append(el("p", {class: "note", id: "contacts-total"}, `Since ${fmt(c.since).slice(0, 10)}: ${c.this_month}; in all: ${c.ever}.`));
    box.append(el("h3", {}, "Visits and actions recorded"),
      el("p", {id: "events"}, held.events.count ? `${held.events.count} (from ${fmt(held.events.first)} to ${fmt(held.events.last)})` : "None."));
    box.append(el("h3", {}, "Your consents"));
    box.append(held.consents.length ? table(["purpose", "channel", "state", "since"],
      held.consents.map((k) => [k.purpose, k.channel, k.reason, k.occurred_at])) : el("p", {class: "note"}, "None recorded."));
    box.append(el("h3", {}, "Your contact preferences"));
    // channels with the same settings share a row
    const groups = new Map();
    for (const p of held.preferences) {
      const row = [p.max_per_week, p.max_per_month, p.topics,
        p.quiet_hours_start === null ? null : `${p.quiet_hours_start}–${p.quiet_hours_end}`, p.time_zone, p.paused_until];
      const key = JSON.stringify(row);
      if (!groups.has(key)) groups.set(key, {channels: [], row: row});
      groups.get(key).channels.push(p.channel);
    }
    box.append(groups.size ? table(["channels", "per week", "per month", "topics", "quiet hours", "time zone", "paused until"],
      Array.from(groups.values()).map((g) => [g.channels.join(", "), ...g.row]))
      : el("p", {class: "note"}, "None: our standard limits apply."));
    const est = held.estimates;
    box.append(el("h3", {}, "What we estimate from your purchases"));
    if (!est) box.append(el("p", {class: "note"}, "Nothing yet."));
    else {
      box.append(pairs({status: est.status, why: est.status_reason, value_tier: est.value_tier,
        expected_spend_next_year: est.clv, chance_you_are_still_a_customer: est.probability_alive,
        groups_you_are_in: (est.segments || []).join(", "), as_of: est.as_of}, "estimates"));
      box.append(el("p", {class: "note"}, "These estimates decide which offers and messages you may receive."));
    }
  }

  function drawReturned(back) {
    const box = $("returned-body");
    box.replaceChildren();
    box.append(el("h3", {}, "Discounts"));
    const disc = back.discounts.filter((d) => d.discounts);
    box.append(disc.length ? table(["currency", "discounts", "orders"], disc.map((d) => [d.currency || "—", d.discounts, d.discounted_orders]))
      : el("p", {class: "note", id: "no-discounts"}, "None so far."));
    box.append(el("h3", {}, "Rewards for referrals"));
    box.append(back.rewards.referred_people ? table(["offer", "people you referred"], back.rewards.by_offer.map((r) => [r.offer || "—", r.people]))
      : el("p", {class: "note"}, "None so far."));
    box.append(el("h3", {}, "What your data is used for"));
    box.append(table(["purpose", "what it means", "you allow it on"], back.personalisation.map(
      (p) => [p.purpose, p.description, p.allowed_channels.length ? p.allowed_channels.join(", ") : "not allowed"])));
  }

  let current = null;

  function granted(held, purpose, channel) {
    return held.consents.some((k) => k.purpose === purpose && k.channel === channel && k.granted);
  }

  function drawConsentForm(data) {
    const grid = $("consent-grid");
    grid.replaceChildren();
    const channels = data.choices.channels;
    const t = el("table", {id: "consent-table"});
    t.append(el("thead", {}, el("tr", {}, el("th", {scope: "col"}, "purpose"), ...channels.map((c) => el("th", {scope: "col"}, c)))));
    const body = el("tbody", {});
    for (const [purpose, words] of Object.entries(data.choices.purposes)) {
      const row = el("tr", {}, el("th", {scope: "row", title: words}, purpose));
      for (const channel of channels) {
        const id = `consent-${purpose}-${channel}`;
        const box = el("input", {type: "checkbox", id: id, "data-purpose": purpose, "data-channel": channel,
          checked: granted(data.held, purpose, channel)});
        row.append(el("td", {}, box, el("label", {for: id, class: "visually-hidden"}, `${purpose} by ${channel}`)));
      }
      body.append(row);
    }
    t.append(body);
    grid.append(t, el("p", {class: "note"}, "Ticked: allowed. Unticking withdraws your consent from now on."));
  }

  function common(held) {
    // Fields that apply to every channel: the page saves them the same on every channel's record.
    const first = held.preferences[0] || {};
    return first;
  }

  function field(labelText, ...inputs) {
    const id = inputs[0].getAttribute("id");
    return el("div", {class: "field"}, el("label", {for: id}, labelText), ...inputs);
  }

  function number(id, value, max) {
    return el("input", {type: "number", id: id, min: 0, max: max, step: "any", value: value === null || value === undefined ? "" : value});
  }

  function drawPreferenceForm(data) {
    const box = $("preference-fields");
    box.replaceChildren();
    const held = data.held;
    const c = common(held);
    const paused = c.paused_until ? String(c.paused_until).slice(0, 10) : "";
    box.append(field("Pause all offers until", el("input", {type: "date", id: "paused-until", value: paused})));
    box.append(field("Quiet hours, from", number("quiet-start", c.quiet_hours_start, 24),
      el("span", {}, "to"), number("quiet-end", c.quiet_hours_end, 24)));
    let zones = [];
    try { zones = Intl.supportedValuesOf("timeZone"); } catch (e) { zones = []; }
    const zone = zones.length
      ? el("select", {id: "time-zone"}, el("option", {value: ""}, "our default"),
        ...zones.map((z) => el("option", {value: z, selected: z === c.time_zone}, z)))
      : el("input", {id: "time-zone", value: c.time_zone || ""});
    box.append(field("Your time zone", zone));
    const topics = data.choices.topics;
    const chosen = String(c.topics || "").split(";").map((t) => t.trim()).filter(Boolean);
    if (topics.length) {
      const group = el("span", {id: "topics"});
      for (const t of topics) {
        const id = `topic-${t}`;
        group.append(el("input", {type: "checkbox", id: id, "data-topic": t, checked: chosen.includes(t)}), el("label", {for: id}, t), " ");
      }
      box.append(el("div", {class: "field"}, el("span", {}, "Only these topics (none ticked: all)"), group));
    } else {
      box.append(field("Only these topics (comma-separated; empty: all)", el("input", {id: "topics-text", value: chosen.join(", ")})));
    }
    box.append(field("Preferred channel", el("select", {id: "preferred-channel"}, el("option", {value: ""}, "no preference"),
      ...data.choices.channels.map((ch) => el("option", {value: ch, selected: ch === c.preferred_channel}, ch)))));
    for (const ch of data.choices.channels) {
      const p = held.preferences.find((x) => x.channel === ch) || {};
      box.append(field(`At most, by ${ch}: per week`, number(`cap-week-${ch}`, p.max_per_week, 1000),
        el("span", {}, "per month"), number(`cap-month-${ch}`, p.max_per_month, 10000)));
    }
    box.append(el("p", {class: "note"}, "Empty: our standard limits. You can only lower them."));
  }

  function render(data) {
    current = data;
    const sentences = $("sentences");
    sentences.replaceChildren(...data.sentences.map((s) => el("p", {}, s)));
    drawHeld(data.held);
    drawReturned(data.returned);
    drawConsentForm(data);
    drawPreferenceForm(data);
    $("erase-form").hidden = !data.choices.erasure;
    $("page").hidden = false;
    say("");
  }

  function value(id) {
    const v = $(id).value.trim();
    return v === "" ? null : v;
  }

  function num(id) {
    const v = value(id);
    return v === null ? null : Number(v);
  }

  async function saveConsents(event) {
    event.preventDefault();
    const changes = [];
    for (const box of document.querySelectorAll("#consent-grid input[type=checkbox]")) {
      const purpose = box.dataset.purpose;
      const channel = box.dataset.channel;
      if (box.checked !== granted(current.held, purpose, channel)) changes.push({purpose: purpose, channel: channel, granted: box.checked});
    }
    const status = $("consents-saved");
    if (!changes.length) { status.textContent = "Nothing changed."; return; }
    try {
      render(await call("POST", "/preferences/consents", {changes: changes}));
      $("consents-saved").className = "saved";
      $("consents-saved").textContent = "Saved.";
    } catch (e) {
      status.className = "saved error";
      status.textContent = e.message;
    }
  }

  async function savePreferences(event) {
    event.preventDefault();
    const caps = {};
    for (const ch of current.choices.channels) caps[ch] = {max_per_week: num(`cap-week-${ch}`), max_per_month: num(`cap-month-${ch}`)};
    let topics;
    if (current.choices.topics.length) {
      topics = Array.from(document.querySelectorAll("#topics input:checked")).map((b) => b.dataset.topic);
    } else {
      topics = (value("topics-text") || "").split(",").map((t) => t.trim()).filter(Boolean);
    }
    const body = {paused_until: value("paused-until"), quiet_hours_start: num("quiet-start"), quiet_hours_end: num("quiet-end"),
      time_zone: value("time-zone"), topics: topics.length ? topics : null, preferred_channel: value("preferred-channel"), caps: caps};
    const status = $("preferences-saved");
    try {
      render(await call("POST", "/preferences/preferences", body));
      $("preferences-saved").className = "saved";
      $("preferences-saved").textContent = "Saved.";
    } catch (e) {
      status.className = "saved error";
      status.textContent = e.message;
    }
  }

  async function erase(event) {
    event.preventDefault();
    const status = $("erase-result");
    try {
      const receipt = await call("POST", "/preferences/erasure", {confirm: $("erase-confirm").value.trim()});
      for (const id of ["statement", "held", "returned", "choices"]) $(id).hidden = true;
      $("download").hidden = true;
      status.className = "saved";
      status.textContent = `Erased. Your receipt number: ${receipt.erasure_id} (${fmt(receipt.erased_at)}).`;
      $("erase").disabled = true;
    } catch (e) {
      status.className = "saved error";
      status.textContent = e.message;
    }
  }

  async function start() {
    const token = location.hash.length > 1 ? decodeURIComponent(location.hash.slice(1)) : "";
    if (token) {
      history.replaceState(null, "", location.pathname);  // the token leaves the address bar at once
      try {
        await call("POST", "/preferences/session", {token: token});
      } catch (e) {
        say(e.message);
        return;
      }
    }
    try {
      render(await call("GET", "/preferences/data"));
    } catch (e) {
      say(e.message);
    }
  }

  $("consent-form").addEventListener("submit", saveConsents);
  $("preference-form").addEventListener("submit", savePreferences);
  $("erase-form").addEventListener("submit", erase);
  start();
})();
