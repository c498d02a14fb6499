// Polls an import's progress JSON and updates the bar and counters (no inline JS: CSP).
(function () {
  "use strict";
  var box = document.getElementById("import-progress");
  if (!box || box.dataset.done === "true") { return; }
  var bar = document.getElementById("import-bar");
  function set(name, value) {
    var el = box.querySelector('[data-field="' + name + '"]');
    if (el) { el.textContent = value === null || value === undefined ? "—" : String(value); }
  }
  function poll() {
    fetch(box.dataset.url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (data) {
        bar.value = data.percent;
        bar.textContent = data.percent + "%";
        ["status", "processed", "total", "created", "updated", "unchanged", "rejected", "format", "encoding", "dates_clamped"].forEach(function (name) {
          set(name, data[name]);
        });
        var error = box.querySelector('[data-field="error"]');
        if (data.error && error) { error.textContent = data.error; error.hidden = false; }
        if (data.done) {
          // Reload once to show the rejected-rows report rendered by the server.
          window.location.reload();
        } else {
          window.setTimeout(poll, 700);
        }
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 300);
})();
