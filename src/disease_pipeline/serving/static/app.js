// Clinician page of the disease_pipeline service. Plain JavaScript, no external assets
// (works offline). The bearer token stays in this browser tab (sessionStorage).
"use strict";

const state = { vocabulary: [], lastRequestId: null, searchTimer: null };
const $ = (selector) => document.querySelector(selector);

function token() { return sessionStorage.getItem("dp-token") || ""; }

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(method, path, body) {
  const options = { method, headers: { Authorization: `Bearer ${token()}` } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  let payload = null;
  try { payload = await response.json(); } catch (_) { payload = null; }
  if (!response.ok) {
    const error = new Error((payload && payload.error) || `HTTP ${response.status}`);
    error.status = response.status;
    error.payload = payload;
    throw error;
  }
  return payload;
}

// ---- errors ---------------------------------------------------------------------------
function showErrors(error) {
  const box = $("#errors");
  box.replaceChildren();
  box.append(el("strong", {}, error.status ? `Request refused (${error.status}): ` : "Error: "));
  box.append(el("span", {}, error.message));
  const detail = (error.payload && Array.isArray(error.payload.detail)) ? error.payload.detail : [];
  if (detail.length) {
    box.append(el("ul", {}, ...detail.map((d) => el("li", { class: "field-error" },
      `${d.field || (d.loc || []).join(".")}: ${d.msg}`))));
  }
  box.hidden = false;
}
function clearErrors() { $("#errors").hidden = true; $("#errors").replaceChildren(); }

// ---- symptoms -------------------------------------------------------------------------
async function searchSymptoms() {
  const query = $("#symptom-search").value.trim();
  const list = $("#suggestions");
  if (query.length < 2) { list.replaceChildren(); return; }
  try {
    const data = await api("GET", `/hpo/search?q=${encodeURIComponent(query)}`);
    if ($("#symptom-search").value.trim() !== query) return; // a newer query is running
    list.replaceChildren(...data.results.map((term) => el("li", {
      role: "option", "data-id": term.id, onclick: () => addSymptom(term),
    }, term.name, el("span", { class: "code" }, term.id))));
  } catch (error) { showErrors(error); }
}

function addSymptom(term) {
  if ($(`#symptoms tr[data-id="${term.id}"]`)) return;
  const severity = el("select", { class: "severity" },
    el("option", { value: "" }, "—"), el("option", { value: "1" }, "mild"),
    el("option", { value: "2" }, "moderate"), el("option", { value: "3" }, "severe"));
  const status = el("select", { class: "status" },
    el("option", { value: "present" }, "present"), el("option", { value: "excluded" }, "excluded"));
  const row = el("tr", { "data-id": term.id },
    el("td", {}, `${term.name} `, el("span", { class: "muted" }, term.id)),
    el("td", {}, status), el("td", {}, severity),
    el("td", {}, el("input", { class: "onset", type: "number", min: "0", step: "1" })),
    el("td", {}, el("button", { type: "button", onclick: () => row.remove() }, "remove")));
  $("#symptoms tbody").append(row);
  $("#symptom-search").value = "";
  $("#suggestions").replaceChildren();
}

// ---- vitals and labs --------------------------------------------------------------------
function addMeasurement(kind) {
  const items = state.vocabulary.filter((item) => item.kind === kind);
  const units = el("select", { class: "unit" });
  const fillUnits = (loinc) => {
    const item = items.find((i) => i.loinc === loinc);
    units.replaceChildren(...item.units.map((u) => el("option", { value: u }, u)));
  };
  const test = el("select", { class: "loinc", onchange: (event) => fillUnits(event.target.value) },
    ...items.map((i) => el("option", { value: i.loinc }, `${i.name} (${i.loinc})`)));
  const row = el("tr", {}, el("td", {}, test),
    el("td", {}, el("input", { class: "value", type: "number", step: "any" })),
    el("td", {}, units),
    el("td", {}, el("button", { type: "button", onclick: () => row.remove() }, "remove")));
  $(kind === "vital" ? "#vitals tbody" : "#labs tbody").append(row);
  fillUnits(items[0].loinc);
}

function measurements(selector) {
  return [...document.querySelectorAll(`${selector} tbody tr`)]
    .filter((row) => row.querySelector(".value").value !== "")
    .map((row) => ({
      loinc: row.querySelector(".loinc").value,
      value: Number(row.querySelector(".value").value),
      unit: row.querySelector(".unit").value,
    }));
}

function patient() {
  const symptoms = [...document.querySelectorAll("#symptoms tbody tr")].map((row) => {
    const symptom = { code: row.dataset.id, present: row.querySelector(".status").value === "present" };
    const severity = row.querySelector(".severity").value;
    const onset = row.querySelector(".onset").value;
    if (severity) symptom.severity = Number(severity);
    if (onset !== "") symptom.onset_days = Number(onset);
    return symptom;
  });
  const record = {
    age: Number($("#age").value), sex: $("#sex").value, symptoms,
    vitals: measurements("#vitals"), labs: measurements("#labs"),
    comorbidities: $("#comorbidities").value.split(",").map((c) => c.trim()).filter(Boolean),
  };
  const id = $("#patient-id").value.trim();
  if (id) record.patient_id = id;
  return record;
}

// ---- results ------------------------------------------------------------------------------
const percent = (p) => (p === null || p === undefined) ? "—" : `${(100 * p).toFixed(1)} %`;

function renderReason(item) {
  if (item === null || typeof item !== "object") return el("li", {}, String(item));
  const text = item.text || item.label || item.name || item.term || item.feature || item.id
    || JSON.stringify(item);
  if (!item.direction) return el("li", {}, text);
  const up = item.direction === "increases";
  return el("li", {}, el("span", { class: up ? "up" : "down" }, text),
    up ? " — raises the probability" : " — lowers the probability");
}

// The predictor's explanation: {target, model, features: [{text, direction}]} and, for
// rare candidates, lists such as matched and missing phenotypes; anything else is shown
// generically.
function renderExplanation(value) {
  if (value === null || value === undefined) return el("p", { class: "muted" }, "no explanation");
  if (typeof value !== "object") return el("p", {}, String(value));
  if (Array.isArray(value)) return el("ul", {}, ...value.map(renderReason));
  const block = el("div", {});
  if (value.target) block.append(el("p", {}, "Reasons for ", el("strong", {}, value.target), ":"));
  for (const [key, item] of Object.entries(value)) {
    if (key === "target" || key === "model" || item === null) continue;
    if (key === "note") {  // nothing moved the probability: say so in the reasons list
      block.append(el("ul", {}, el("li", { class: "muted" }, item)));
      continue;
    }
    if (key !== "features") block.append(el("h4", {}, key.replaceAll("_", " ")));
    block.append(renderExplanation(item));
  }
  return block;
}

// A rare candidate's phenotypes: the patient's findings it matches, its frequent
// phenotypes the patient does not report, and the findings that speak against it.
const frequency = (f) => (f === null || f === undefined) ? "frequency not given" : `in ${percent(f)} of patients`;

function phenotypeList(title, items, describe) {
  if (!items || !items.length) return [];
  return [el("h4", {}, title), el("ul", {}, ...items.map((item) =>
    el("li", { "data-hpo": item.hpo_id }, `${item.name} (${item.hpo_id})`, el("span", { class: "muted" }, ` — ${describe(item)}`))))];
}

function renderPhenotypes(item) {
  const p = item.phenotypes;
  const summary = `${item.name} (${item.code}): ${p.n_matched} matched, ` +
    `${p.expected_absent.length} expected but not reported` +
    (p.known_cases ? `, ${p.known_cases} published cases` : "");
  return el("details", { class: "phenotypes", "data-code": item.code },
    el("summary", {}, summary),
    ...phenotypeList(p.n_matched > p.matched.length
      ? `Matched (the ${p.matched.length} most specific of ${p.n_matched})` : "Matched", p.matched, (m) => [
      m.annotated_frequency !== undefined ? `annotated ${frequency(m.annotated_frequency)}` : null,
      m.share_of_known_cases !== undefined ? `seen in ${percent(m.share_of_known_cases)} of known cases` : null,
    ].filter(Boolean).join("; ") || "matched"),
    ...phenotypeList("Expected but not reported", p.expected_absent, (m) => frequency(m.annotated_frequency)),
    ...phenotypeList("Against", p.against, (m) => m.reason === "excluded" ? "explicitly absent in this patient" : m.reason));
}

function renderResult(result) {
  $("#result").hidden = false;
  $("#result-meta").textContent =
    `model ${result.model.name} v${result.model.version} · request ${result.request_id} · ${result.timestamp}`;
  const severity = result.severity || {};
  $("#severity").textContent = severity.level || "—";
  $("#severity").title = severity.note || "";  // a plausible can't-miss diagnosis, named
  $("#severity-bars").replaceChildren(...Object.entries(severity.probabilities || {}).map(([level, p]) =>
    el("div", { class: "bar" }, el("span", {}, level),
      el("span", { class: "fill", style: `width:${Math.round(120 * p)}px` }), percent(p))));
  $("#p-rare").textContent = percent(result.p_rare);
  $("#differential tbody").replaceChildren(...result.differential.map((item) => {
    const interval = Array.isArray(item.interval) ? `${percent(item.interval[0])} – ${percent(item.interval[1])}` : "—";
    const name = item.must_not_miss
      ? el("td", { class: "must-not-miss" }, item.name || item.code,
        el("strong", {}, " — must not miss"), el("span", { class: "muted" }, ` (rule out: ${item.rule_out})`))
      : el("td", {}, item.name || item.code);
    return el("tr", {}, el("td", {}, item.rank), name,
      el("td", {}, item.code), el("td", { class: item.category }, item.category),
      el("td", {}, percent(item.probability)), el("td", {}, interval));
  }));
  $("#explanation").replaceChildren(renderExplanation(result.explanation));
  const explained = result.differential.filter((item) => item.phenotypes);
  $("#rare-phenotypes").replaceChildren(...explained.map(renderPhenotypes));
  $("#rare-phenotypes-block").hidden = explained.length === 0;
  $("#input-notes").replaceChildren(...(result.input_notes || []).map((n) => el("li", {}, n)));
  $("#feedback-choices").replaceChildren(...result.differential.map((item) =>
    el("option", { value: item.code }, item.name || item.code)));
  $("#feedback-status").textContent = "";
  state.lastRequestId = result.request_id;
}

async function predict() {
  clearErrors();
  try {
    const result = await api("POST", "/predict", { patient: patient(), top_k: Number($("#top-k").value) || 10 });
    renderResult(result);
  } catch (error) { showErrors(error); }
}

async function sendFeedback(event) {
  event.preventDefault();
  const status = $("#feedback-status");
  try {
    const body = { request_id: state.lastRequestId, confirmed_code: $("#feedback-code").value.trim() };
    const notes = $("#feedback-notes").value.trim();
    if (notes) body.notes = notes;
    const stored = await api("POST", "/feedback", body);
    status.textContent = `Feedback stored (${stored.confirmed_code}, rank ${stored.confirmed_rank ?? "not in list"}).`;
  } catch (error) {
    status.textContent = `Feedback refused: ${error.message}`;
  }
}

// ---- start ------------------------------------------------------------------------------
async function start() {
  $("#token").value = token();
  $("#token-status").textContent = token() ? "token set" : "no token";
  $("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("dp-token", $("#token").value.trim());
    $("#token-status").textContent = token() ? "token set" : "no token";
  });
  $("#symptom-search").addEventListener("input", () => {
    clearTimeout(state.searchTimer);
    state.searchTimer = setTimeout(searchSymptoms, 150);
  });
  $("#add-vital").addEventListener("click", () => addMeasurement("vital"));
  $("#add-lab").addEventListener("click", () => addMeasurement("lab"));
  $("#predict-btn").addEventListener("click", predict);
  $("#feedback-form").addEventListener("submit", sendFeedback);
  const vocabulary = await (await fetch("/ui/vocabulary")).json();
  state.vocabulary = vocabulary.measurements;
  $("#top-k").value = vocabulary.top_k;
  document.body.dataset.ready = "true";
}

start();
