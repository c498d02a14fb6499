// Live progress of an issue being sent: polls the JSON endpoint and updates the counters.
(function () {
  "use strict";
  var panel = document.getElementById("progress");
  if (!panel) { return; }
  var url = panel.getAttribute("data-url");
  function field(name) { return panel.querySelector('[data-field="' + name + '"]'); }
  function eta(seconds, unknown) {
    if (seconds === null || seconds === undefined) { return unknown; }
    return Math.floor(seconds / 60) + " min " + (seconds % 60) + " s";
  }
  function update(data) {
    ["sent", "failed", "skipped", "left"].forEach(function (name) {
      field(name).textContent = String(data[name]);
    });
    field("rate").textContent = Number(data.rate).toFixed(1);
    var etaField = field("eta");
    etaField.textContent = eta(data.eta_seconds, etaField.getAttribute("data-unknown"));
    var bar = field("percent");
    bar.value = data.percent;
    bar.textContent = data.percent + "%";
    var status = document.getElementById("issue-status");
    if (status) { status.textContent = data.status_label; }
    return data.status;
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        var status = data ? update(data) : "sending";
        if (status === "sending") { window.setTimeout(poll, 2000); }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1000);
}());
