// Draws the overview's charts from /api/v1/metrics/history with uPlot.
// No inline script (the console's CSP forbids it): this file finds the
// .chart elements by their data attributes.
(function () {
  "use strict";
  function draw(el) {
    var kind = el.dataset.chart, win = el.dataset.window;
    fetch("/api/v1/metrics/history?window=" + encodeURIComponent(win), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { points: [] }; })
      .then(function (body) {
        var pts = body.points || [];
        var xs = pts.map(function (p) { return Date.parse(p.minute) / 1000; });
        var series, data;
        if (kind === "lag") {
          series = [{}, { label: "p50 ms", stroke: "#457b9d" }, { label: "p99 ms", stroke: "#e63946" }];
          data = [xs, pts.map(function (p) { return p.lagP50Ms; }), pts.map(function (p) { return p.lagP99Ms; })];
        } else {
          series = [{}, { label: "beats/s", stroke: "#2a9d8f" }];
          data = [xs, pts.map(function (p) { return p.beatsPerSec; })];
        }
        el.textContent = "";
        if (!window.uPlot) { el.textContent = "charts unavailable"; return; }
        new window.uPlot({ width: Math.max(el.clientWidth, 400), height: 200, series: series }, data, el);
      })
      .catch(function () { el.textContent = "no data"; });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".chart").forEach(draw);
  });
})();
