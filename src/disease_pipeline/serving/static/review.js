// Review queue on the clinician page: list (GET /review) the most informative recent
// predictions without a confirmed diagnosis and confirm one (POST /feedback) with the
// page's token; uses app.js's api() and el().
"use strict";

function reviewRow(item) {
  const code = el("input", {
    type: "text",
    class: "review-code",
    value: item.top1_code || "",
    maxlength: "32",
    "aria-label": `confirmed diagnosis of ${item.request_id}`,
  });
  const confirm = el("button", {
    type: "button",
    "data-request": item.request_id,
    onclick: () => confirmReview(item.request_id, code.value.trim()),
  }, "Confirm");
  const answered = item.candidates
    .map((c) => `${c.code} ${(100 * c.probability).toFixed(0)} %`).join(", ");
  const reported = [
    item.present.join(", "),
    item.absent.length ? `not: ${item.absent.join(", ")}` : "",
    item.measurements ? `${item.measurements} measurement(s)` : "",
  ].filter(Boolean).join("; ");
  return el("tr", { "data-request": item.request_id },
    el("td", {}, item.rank),
    el("td", {}, `${item.age ?? "age ?"} ${item.sex || ""} (${(item.logged_at || "").slice(0, 10)})`),
    el("td", {}, reported),
    el("td", {}, answered),
    el("td", {}, item.p_rare == null ? "" : item.p_rare.toFixed(2)),
    el("td", {}, code, confirm));
}

async function loadReview(event) {
  if (event) event.preventDefault();
  try {
    const result = await api("GET", "/review");
    document.querySelector("#review-table tbody").replaceChildren(...result.cases.map(reviewRow));
    document.querySelector("#review-status").textContent = `${result.cases.length} case(s) to review`;
  } catch (error) {
    document.querySelector("#review-status").textContent = `refused: ${error.message}`;
  }
}

async function confirmReview(requestId, code) {
  try {
    await api("POST", "/feedback", { request_id: requestId, confirmed_code: code });
    await loadReview();
    document.querySelector("#review-status").textContent += ` (confirmed ${code} for ${requestId})`;
  } catch (error) {
    document.querySelector("#review-status").textContent = `refused: ${error.message}`;
  }
}

document.querySelector("#review-form").addEventListener("submit", loadReview);
