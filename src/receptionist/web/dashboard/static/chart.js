// Calls per day on the Today page, drawn with the vendored uPlot. The numbers and the day
// labels come from the page (a JSON block written by the server), never from elsewhere.
(function () {
  "use strict";
  var box = document.getElementById("calls-chart");
  var source = document.getElementById("chart-data");
  if (!box || !source || typeof uPlot === "undefined") return;
  var data;
  try { data = JSON.parse(source.textContent); } catch (e) { return; }
  var labels = data.labels || [];
  var xs = labels.map(function (_, i) { return i; });
  function draw() {
    box.textContent = "";
    var width = Math.max(260, box.clientWidth || 320);
    new uPlot({
      width: width,
      height: 220,
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false } },
      axes: [
        { values: function (u, ticks) { return ticks.map(function (i) { return labels[i] || ""; }); }, space: 70 },
        { size: 48, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000] }
      ],
      series: [
        { label: "", value: function (u, i) { return labels[i] || ""; } },
        { label: box.dataset.answered, stroke: "#0b6e4f", width: 2, fill: "rgba(11,110,79,0.08)" },
        { label: box.dataset.missed, stroke: "#9a6700", width: 2 },
        { label: box.dataset.failed, stroke: "#b42318", width: 2 }
      ]
    }, [xs, data.answered || [], data.missed || [], data.failed || []], box);
  }
  draw();
  var pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(draw, 200);
  });
})();
