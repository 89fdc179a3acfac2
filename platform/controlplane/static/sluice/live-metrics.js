// Draws each live metric's last hour (a canvas with data-chart, as the server wrote it) with
// Chart.js, when the page loads and whenever htmx swaps the metrics in again; the charts being
// replaced are destroyed first, so a page left open does not keep every minute's charts.
(function () {
  "use strict";

  function charts(root) {
    return root.querySelectorAll ? root.querySelectorAll("canvas[data-chart]") : [];
  }

  function draw(canvas) {
    var series = JSON.parse(canvas.dataset.chart);
    var datasets = [{
      label: series.label,
      data: series.values,
      borderColor: "#2563eb",
      borderWidth: 1.5,
      pointRadius: 0,
      spanGaps: false,
    }];
    if (series.limit !== null) {
      datasets.push({
        label: "Limit",
        data: series.values.map(function () { return series.limit; }),
        borderColor: "#b91c1c",
        borderWidth: 1,
        borderDash: [4, 4],
        pointRadius: 0,
      });
    }
    new window.Chart(canvas, {
      type: "line",
      data: { labels: series.labels, datasets: datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        plugins: { legend: { display: false } },
        scales: { x: { ticks: { maxTicksLimit: 6 } }, y: { beginAtZero: true } },
      },
    });
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    charts(event.detail.target).forEach(function (canvas) {
      var chart = window.Chart.getChart(canvas);
      if (chart) { chart.destroy(); }
    });
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    charts(event.detail.target).forEach(draw);
  });
})();
