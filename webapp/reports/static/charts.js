// Draws every <canvas data-chart="{...}"> with Chart.js (served by the app). The data sits in
// a data attribute, so the Content-Security-Policy needs no inline script. Animation is off
// so charts print as they are.
(function () {
  "use strict";
  if (typeof window.Chart === "undefined") { return; }
  var colour = getComputedStyle(document.documentElement).getPropertyValue("--color-primary").trim() || "#1d4ed8";
  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var spec = JSON.parse(canvas.getAttribute("data-chart"));
    var spark = canvas.classList.contains("spark");
    spec.datasets.forEach(function (dataset, index) {
      dataset.borderColor = dataset.borderColor || [colour, "#b91c1c", "#6e7781", "#1a7f37"][index % 4];
      dataset.backgroundColor = dataset.backgroundColor || dataset.borderColor;
      dataset.pointRadius = spark ? 0 : 2;
      dataset.borderWidth = 2;
      dataset.spanGaps = true;
    });
    new window.Chart(canvas, {
      type: spec.type || "line",
      data: { labels: spec.labels, datasets: spec.datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        plugins: { legend: { display: !spark && spec.datasets.length > 1 }, tooltip: { enabled: !spark } },
        scales: spark ? { x: { display: false }, y: { display: false } } : {
          x: { stacked: !!spec.stacked },
          y: { stacked: !!spec.stacked, beginAtZero: true, ticks: spec.percent ? { callback: function (v) { return Math.round(v * 100) + "%"; } } : {} }
        }
      }
    });
  });
}());
