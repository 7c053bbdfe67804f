// Screening alerts on the clinician page: list (GET /alerts) and acknowledge or close
// (POST /alerts/update) with the page's token; uses app.js's api() and el().
"use strict";

function alertActions(alert) {
  const cell = el("td");
  const actions = { new: ["acknowledge", "close"], acknowledged: ["close"] }[alert.state] || [];
  for (const action of actions) {
    cell.append(el("button", {
      type: "button",
      "data-alert": alert.alert_id,
      "data-action": action,
      onclick: () => updateAlert(alert.alert_id, action),
    }, action === "acknowledge" ? "Acknowledge" : "Close"));
  }
  return cell;
}

function renderAlerts(alerts) {
  const body = document.querySelector("#alerts-table tbody");
  body.replaceChildren(...alerts.map((alert) => el("tr", { "data-alert": alert.alert_id },
    el("td", {}, alert.priority),
    el("td", {}, alert.rule),
    el("td", {}, `${alert.encounter_id} (${(alert.encounter_start || "").slice(0, 10)})`),
    el("td", {}, alert.reason),
    el("td", { class: "alert-state" }, alert.state),
    alertActions(alert))));
  document.querySelector("#alerts-status").textContent = `${alerts.length} alert(s)`;
}

async function loadAlerts(event) {
  if (event) event.preventDefault();
  const wanted = document.querySelector("#alerts-state").value;
  try {
    const result = await api("GET", wanted ? `/alerts?state=${wanted}` : "/alerts");
    renderAlerts(result.alerts);
  } catch (error) {
    document.querySelector("#alerts-status").textContent = `refused: ${error.message}`;
  }
}

async function updateAlert(alertId, action) {
  try {
    const alert = await api("POST", "/alerts/update", { alert_id: alertId, action });
    document.querySelector("#alerts-status").textContent = `alert ${alert.state}`;
    await loadAlerts();
  } catch (error) {
    document.querySelector("#alerts-status").textContent = `refused: ${error.message}`;
  }
}

document.querySelector("#alerts-form").addEventListener("submit", loadAlerts);
