// The seller's page: upload a photo, follow the run's events, render whatever the result holds.
// Every field is optional here: the result grows over time, and absent parts are simply not shown.
"use strict";

const $ = (id) => document.getElementById(id);
const NODES = ["intake", "supplier_match", "market", "compliance", "shortlist", "writer"];
let queryPhotoUrl = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const has = (v) => v !== undefined && v !== null && v !== "";
const num = (v, digits = 2) => (typeof v === "number" && isFinite(v) ? v.toFixed(digits) : null);
const money = (v, cur) => (num(v) === null ? null : `${num(v)} ${cur || ""}`.trim());

function headers() {
  const key = $("api_key").value.trim();
  return key ? { "X-API-Key": key } : {};
}

async function apiJson(url, options = {}) {
  const response = await fetch(url, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) {
    const detail = body && body.detail !== undefined
      ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : response.statusText;
    const rid = body && body.request_id ? ` (request ${body.request_id})` : "";
    throw new Error(`${response.status}: ${detail}${rid}`);
  }
  return body;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

// ---- form ----------------------------------------------------------------------------------

function chosenFile() {
  return $("photo").files[0] || $("camera").files[0] || null;
}

function previewFile(file) {
  if (queryPhotoUrl) URL.revokeObjectURL(queryPhotoUrl);
  queryPhotoUrl = file ? URL.createObjectURL(file) : null;
  const img = $("preview");
  img.hidden = !queryPhotoUrl;
  if (queryPhotoUrl) { img.src = queryPhotoUrl; img.alt = `Your photo: ${file.name}`; }
}

function constraints() {
  const out = {};
  for (const id of ["max_moq", "quantity"]) if ($(id).value) out[id] = parseInt($(id).value, 10);
  for (const id of ["max_unit_price", "min_margin_pct"]) if ($(id).value) out[id] = parseFloat($(id).value);
  if ($("supplier_kind").value) out.supplier_kind = $("supplier_kind").value;
  return out;
}

async function loadMarkets() {
  try {
    const markets = await apiJson("/v1/markets");
    if (!Array.isArray(markets) || !markets.length) return;
    const select = $("market");
    const current = select.value;
    select.replaceChildren(...markets.map((m) => el("option", { value: m.code, text: `${m.code}: ${m.name || m.code}` })));
    if (markets.some((m) => m.code === current)) select.value = current;
  } catch (_) { /* keep the built-in choices */ }
}

// ---- progress ------------------------------------------------------------------------------

function resetProgress() {
  $("progress-section").hidden = false;
  $("progress").replaceChildren(...NODES.map((n) => el("li", { id: `node-${n}`, text: `${n}: waiting` })));
}

function onEvent(event, data) {
  if (event === "node_start" || event === "node_end") {
    let item = $(`node-${data.node}`);
    if (!item) { item = el("li", { id: `node-${data.node}` }); $("progress").append(item); }
    item.className = event === "node_end" ? "done" : "running";
    item.textContent = event === "node_end"
      ? `${data.node}: done${num(data.ms, 0) !== null ? ` in ${num(data.ms, 0)} ms` : ""}` : `${data.node}: running`;
  }
}

// Server-sent events over fetch (EventSource cannot send an API key header).
async function followEvents(runId) {
  const response = await fetch(`/v1/runs/${runId}/events`, { headers: headers() });
  if (!response.ok || !response.body) throw new Error(`event stream: ${response.status}`);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let final = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      if (!data) continue;
      let parsed = {};
      try { parsed = JSON.parse(data); } catch (_) { /* ignore */ }
      onEvent(event, parsed);
      if (event === "succeeded" || event === "failed") final = { event, data: parsed };
    }
  }
  return final;
}

// ---- rendering -----------------------------------------------------------------------------

function facts(pairs) {
  const shown = pairs.filter(([, v]) => has(v));
  if (!shown.length) return null;
  return el("dl", { class: "facts" }, shown.map(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]));
}

function evidenceList(ids, evidence) {
  if (!Array.isArray(ids) || !ids.length) return null;
  return el("ul", {}, ids.map((id) => {
    const e = (evidence || {})[id];
    return el("li", {}, e ? `${e.source || "?"} / ${e.record_id || "?"} / ${e.field || "?"} = ${JSON.stringify(e.value)}` : id);
  }));
}

function scoreRows(scores) {
  if (!scores || typeof scores !== "object") return null;
  const entries = Object.entries(scores).filter(([, v]) => typeof v === "number");
  if (!entries.length) return null;
  return el("div", { class: "scores", role: "list", "aria-label": "Scores per criterion" },
    entries.map(([name, v]) => [
      el("span", { role: "listitem", text: name }),
      el("meter", { min: 0, max: 1, value: v, "aria-label": `${name} score` }),
      el("span", { text: num(v) }),
    ]));
}

function complianceBadge(compliance) {
  if (!compliance || !has(compliance.status)) return null;
  const status = compliance.status;
  const cls = status === "covered" || status === "ok" ? "ok" : status === "gaps" ? "warn" : "bad";
  return el("span", { class: `badge ${cls}`, text: `compliance: ${status}` });
}

function gapsList(compliance) {
  const gaps = compliance && Array.isArray(compliance.gaps) ? compliance.gaps : [];
  if (!gaps.length) return null;
  return el("ul", {}, gaps.map((g) => el("li", {},
    `${g.legal_act || g.rule_id || "requirement"}: ${g.status || ""}`,
    Array.isArray(g.needs) && g.needs.length ? ` (needs ${g.needs.join(", ")})` : "")));
}

// what the landed cost leaves out, as the result names it (e.g. no additional-duty row)
function incompleteNote(lc) {
  const missing = Array.isArray(lc.missing) ? lc.missing.filter(has).join("; ") : "";
  return el("span", { class: "muted", text: missing ? ` (incomplete: ${missing})` : " (incomplete)" });
}

function costBlock(item) {
  const lc = item.landed_cost || {}, mg = item.margin;
  const parts = [];
  if (num(lc.unit_cost) !== null) {
    const mode = lc.freight && lc.freight.mode;
    parts.push(["Landed cost", [`${money(lc.unit_cost, lc.currency)} a unit`
      + (has(lc.quantity) ? ` at ${lc.quantity} pieces` : "") + (mode ? `, by ${mode}` : ""),
      lc.complete === false ? incompleteNote(lc) : null]]);
  } else {
    const missing = Array.isArray(lc.missing) ? lc.missing.join("; ") : "";
    parts.push(["Landed cost", el("span", { class: "muted", text: missing ? `unknown: ${missing}` : "not computed" })]);
  }
  if (mg && num(mg.per_unit) !== null) {
    // the margin is computed from the landed cost, so it misses what the cost misses
    parts.push(["Margin", [`${money(mg.per_unit, "USD")} a unit`
      + (num(mg.pct, 1) !== null ? ` (${num(mg.pct, 1)}\u00a0%)` : "")
      + (num(mg.sale_price) !== null ? ` at ${mg.sale_price_basis || "the sale price"} ${money(mg.sale_price, "USD")}` : ""),
      mg.complete === false ? incompleteNote(lc) : null]]);
  }
  return parts;
}

function card(item, result) {
  const s = item.supplier || {};
  const price = item.price || {};
  const place = [s.city, s.province, s.country].filter(has).join(", ");
  const matched = has(item.matched_image) ? `/v1/images/${item.matched_image}` : null;
  const claims = (Array.isArray(item.claims) ? item.claims : [])
    .map((cid) => (result.claims || []).find((c) => c.id === cid)).filter(Boolean);
  return el("li", { class: "card", "data-supplier-id": s.supplier_id || "" },
    el("h3", {}, `${has(item.rank) ? `#${item.rank} ` : ""}${s.name || s.supplier_id || "supplier"}`),
    el("p", { class: "muted" }, [s.supplier_id, s.kind ? s.kind.replace("_", " ") : null, place].filter(has).join(" · "),
      item.is_source ? " " : null, item.is_source ? el("span", { class: "badge ok", text: "likely source" }) : null),
    el("div", { class: "photos" },
      queryPhotoUrl ? el("figure", {}, el("img", { src: queryPhotoUrl, alt: "Your photo" }), el("figcaption", { text: "your photo" })) : null,
      matched ? el("figure", {}, el("img", { src: matched, alt: `Supplier photo: ${(item.listing || {}).title || ""}`, loading: "lazy" }),
        el("figcaption", { text: `supplier photo${(item.listing || {}).listing_id ? ` (${item.listing.listing_id})` : ""}` })) : null),
    facts([
      ["Similarity", num(item.similarity, 3)],
      ["Price", has(price.min) ? `${num(price.min)}–${num(price.max)} ${price.currency || ""}` : null],
      ["At your quantity", money(price.unit_price_at_quantity, price.currency)],
      ["MOQ", has(item.moq) ? String(item.moq) : null],
      ["Lead time", has(item.lead_time_days) ? `${item.lead_time_days} days` : null],
      ["Total score", num(item.total, 3)],
      ...costBlock(item),
    ]),
    scoreRows(item.scores),
    complianceBadge(item.compliance), gapsList(item.compliance),
    claims.length ? el("details", {}, el("summary", { text: `Evidence (${claims.length} claims)` }),
      claims.map((c) => el("div", {}, el("p", { text: c.text || c.id }), evidenceList(c.evidence, result.evidence)))) : null,
    rfqBlock(item.rfq, result.evidence));
}

// the request for quotation drafted for this supplier (present when a language model is set up)
function rfqBlock(rfq, evidence) {
  if (!rfq || !(has(rfq.en) || has(rfq.zh))) return null;
  const by = rfq.source === "model" ? "drafted by the model, checked against the evidence" : "from the template";
  return el("details", { class: "rfq" }, el("summary", { text: "Request for quotation (English, 中文)" }),
    has(rfq.en) ? el("p", { lang: "en", text: rfq.en }) : null,
    has(rfq.zh) ? el("p", { lang: "zh", text: rfq.zh }) : null,
    el("p", { class: "muted", text: by }),
    Array.isArray(rfq.evidence) && rfq.evidence.length ? evidenceList(rfq.evidence, evidence) : null);
}

// claims written by the model (a run's summary, a market's narrative), each with its evidence
function claimList(claims, evidence) {
  const items = (Array.isArray(claims) ? claims : []).filter((c) => c && has(c.text));
  if (!items.length) return null;
  return el("ul", { class: "claims" }, items.map((c) => el("li", {}, c.text,
    Array.isArray(c.evidence) && c.evidence.length
      ? el("details", {}, el("summary", { text: "evidence" }), evidenceList(c.evidence, evidence)) : null)));
}

function priceChart(band, shortlist) {
  const keys = ["min", "p25", "median", "p75", "max"];
  if (!band || !keys.every((k) => typeof band[k] === "number")) return null;
  // supplier prices are drawn only in the band's currency: nothing here converts money
  const prices = (shortlist || []).filter((i) => (i.price || {}).currency === band.currency)
    .map((i) => i.price.unit_price_at_quantity ?? i.price.min)
    .filter((p) => typeof p === "number");
  const lo = Math.min(band.min, ...prices), hi = Math.max(band.max, ...prices);
  const W = 600, H = 110, x = (v) => 20 + ((v - lo) / (hi - lo || 1)) * (W - 40);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `Marketplace prices: min ${band.min}, p25 ${band.p25}, median ${band.median}, p75 ${band.p75}, max ${band.max} ${band.currency || ""}; supplier unit prices ${prices.join(", ")}`);
  const add = (tag, attrs, text) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text) n.textContent = text;
    svg.append(n);
  };
  add("line", { x1: x(band.min), x2: x(band.max), y1: 40, y2: 40, stroke: "#5a6472" });
  add("rect", { x: x(band.p25), y: 25, width: Math.max(1, x(band.p75) - x(band.p25)), height: 30, fill: "#cfe0f3", stroke: "#0b5cad" });
  add("line", { x1: x(band.median), x2: x(band.median), y1: 25, y2: 55, stroke: "#0b5cad", "stroke-width": 3 });
  // min, median and max above the box; the quartiles below it, so close values stay legible
  for (const k of keys) add("text", { x: x(band[k]), y: k === "p25" || k === "p75" ? 68 : 18, "font-size": 11, "text-anchor": k === "p25" ? "end" : k === "p75" ? "start" : "middle" }, `${k} ${num(band[k])}`);
  prices.forEach((p) => add("circle", { cx: x(p), cy: 86, r: 5, fill: "#a35a00" }));
  add("text", { x: 20, y: 104, "font-size": 11 }, `box: marketplace p25–p75, bar: median (${band.currency || ""}); dots: supplier unit prices`);
  return el("div", { class: "chart" }, svg);
}

function nicheList(niches) {
  const items = Array.isArray(niches) ? niches.filter((n) => n && has(n.label)) : [];
  if (!items.length) return null;
  return el("div", {}, el("h4", { text: "Niches" }), el("ul", {}, items.map((n) => el("li", {},
    `${n.label}: ${has(n.demand_per_listing) ? n.demand_per_listing : "?"} bought a listing last month`
    + (has(n.category_demand_per_listing) ? ` (category ${n.category_demand_per_listing})` : "")
    + (has(n.median_stars) ? `, median stars ${n.median_stars}` : "")
    + (has(n.category_median_stars) ? ` (category ${n.category_median_stars})` : "")))));
}

function renderMarket(market, shortlist, evidence) {
  if (!market) return null;
  if (market.available === false) return el("section", {}, el("h3", { text: `Market ${market.market || ""}` }), el("p", { class: "muted", text: market.reason || "no marketplace data" }));
  const cat = market.category || {}, band = market.price_band || {}, demand = market.demand || {};
  return el("section", {}, el("h3", { text: `Market ${market.market || ""}` }),
    facts([["Category", has(cat.name) ? `${cat.name}${num(cat.score) ? ` (match ${num(cat.score)})` : ""}` : null],
      ["Median price", money(band.median, band.currency)],
      ["Listings sampled", has(band.n) ? String(band.n) : null],
      ["Your sale price", market.sale_price_position ? `${money(market.sale_price_position.sale_price, "USD")}: above ${market.sale_price_position.listings_cheaper} of ${market.sale_price_position.n} listing prices` : null],
      ["Bought last month (median)", has(demand.bought_in_last_month_median) ? String(demand.bought_in_last_month_median) : null],
      ["Source", market.source]]),
    priceChart(band, shortlist), nicheList(market.niches), claimList(market.narrative, evidence));
}

function renderCompliance(compliance, evidence) {
  if (!compliance) return null;
  const reqs = Array.isArray(compliance.requirements) ? compliance.requirements : [];
  const questions = Array.isArray(compliance.questions) ? compliance.questions : [];
  if (compliance.available === false) return el("section", {}, el("h3", { text: "Compliance" }), el("p", { text: compliance.reason || "no rules" }));
  return el("section", {}, el("h3", { text: `Compliance: ${compliance.market || ""} (${reqs.length} requirements)` }),
    reqs.length ? el("table", {}, el("thead", {}, el("tr", {}, ["Legal act", "Requirement", "Kind", "Why"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, reqs.map((r) => el("tr", {},
        el("td", {}, has(r.source_url) ? el("a", { href: r.source_url, rel: "noopener", target: "_blank" }, r.legal_act || r.rule_id) : (r.legal_act || r.rule_id || "")),
        el("td", { text: r.title || "" }), el("td", { text: r.kind || "" }),
        el("td", {}, r.why || "", Array.isArray(r.evidence) && r.evidence.length
          ? el("details", {}, el("summary", { text: "evidence" }), evidenceList(r.evidence, evidence)) : null))))) : null,
    questions.length ? el("div", {}, el("h4", { text: "To confirm with the seller" }),
      el("ul", {}, questions.map((q) => el("li", { text: q.question || q.attribute || "" })))) : null);
}

function renderWarnings(warnings) {
  const items = Array.isArray(warnings) ? warnings.filter(has) : [];
  if (!items.length) return null;
  return el("section", { class: "warnings", "aria-labelledby": "warnings-title" },
    el("h3", { id: "warnings-title", text: `Check before you buy (${items.length})` }),
    el("ul", {}, items.map((w) => el("li", { text: w }))));
}

function render(result) {
  const product = result.product || {};
  const shortlist = Array.isArray(result.shortlist) ? result.shortlist : [];
  $("results-title").hidden = false;
  const hs = Array.isArray(product.hs_candidates) ? product.hs_candidates.map((c) => `${c.code} (${num(c.score)})`).join(", ") : null;
  $("product").replaceChildren(el("section", {}, el("h3", { text: "Product" }),
    facts([["Category", product.category], ["Material", product.material], ["HS candidates", hs]])) );
  const summary = claimList(result.summary, result.evidence);
  $("summary").replaceChildren(summary ? el("section", {}, el("h3", { text: "Summary" }), summary) : "");
  $("warnings").replaceChildren(renderWarnings(result.warnings) || "");
  $("market-view").replaceChildren(renderMarket(result.market, shortlist, result.evidence) || "");
  const excluded = Array.isArray(result.excluded) ? result.excluded : [];
  $("shortlist").replaceChildren(...(shortlist.length ? shortlist.map((item) => card(item, result))
    : [el("li", { class: "muted excluded" }, "No supplier passed the constraints.",
        excluded.length ? el("ul", {}, excluded.slice(0, 5).map((x) => el("li", {},
          `${x.supplier_id} (${x.listing_id}): ${(x.reasons || []).join("; ")}`))) : null)]));
  $("compliance").replaceChildren(renderCompliance(result.compliance, result.evidence) || "");
  const g = result.grounding || {}, t = result.timings || {};
  $("meta").replaceChildren(el("p", { class: "muted" },
    has(g.total) ? `Grounding: ${g.supported}/${g.total} claims supported. ` : "",
    num(t.total, 0) ? `Time: ${num(t.total, 0)} ms.` : ""));
  $("results").focus();
}

// ---- run -----------------------------------------------------------------------------------

async function submit(event) {
  event.preventDefault();
  showError("");
  const file = chosenFile();
  if (!file) { showError("Choose a product photo first."); $("photo").focus(); return; }
  const button = $("submit");
  button.disabled = true;
  button.textContent = "Working…";
  resetProgress();
  try {
    const form = new FormData();
    form.append("image", file, file.name || "photo.jpg");
    form.append("market", $("market").value);
    form.append("constraints", JSON.stringify(constraints()));
    for (const name of ["sale_price", "shipping_mode"]) {
      if ($(name).value) form.append(name, $(name).value);
    }
    const accepted = await apiJson("/v1/runs?mode=async", { method: "POST", body: form });
    const final = await followEvents(accepted.id);
    const run = await apiJson(`/v1/runs/${accepted.id}`);
    if (run.status !== "succeeded" || !run.result) throw new Error(run.error || (final && final.data.error) || "the run failed");
    render(run.result);
  } catch (error) {
    showError(error.message || String(error));
  } finally {
    button.disabled = false;
    button.textContent = "Find suppliers";
  }
}

function setUpDrop() {
  const drop = $("drop");
  for (const name of ["dragenter", "dragover"]) drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); });
  for (const name of ["dragleave", "drop"]) drop.addEventListener(name, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) {
      $("photo").files = e.dataTransfer.files;
      previewFile($("photo").files[0]);
    }
  });
  $("photo").addEventListener("change", () => { $("camera").value = ""; previewFile(chosenFile()); });
  $("camera").addEventListener("change", () => { $("photo").value = ""; $("photo").required = false; previewFile(chosenFile()); });
}

document.addEventListener("DOMContentLoaded", () => {
  setUpDrop();
  $("run-form").addEventListener("submit", submit);
  loadMarkets();
});
