// Draws the report's charts from the JSON in #report-data with the embedded Chart.js.
// Labels go to canvas text, never into HTML, so names from the data cannot become markup.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var palette = ["#2f6fdf", "#e8833a", "#2e9e6b", "#c0392b", "#8e5cc7", "#6c7a89", "#d4a017", "#1aa6b7"];
  var drawn = 0;

  Chart.defaults.animation = false;
  Chart.defaults.responsive = true;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  Chart.defaults.color = "#1d2433";

  function percent(value) {
    return value === null || value === undefined ? null : Math.round(value * 1000) / 10;
  }

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas) {
      return;
    }
    new Chart(canvas, config);
    drawn += 1;
  }

  var stageLabels = data.funnel.stages;
  draw("chart-funnel", {
    type: "bar",
    data: {
      labels: stageLabels,
      datasets: data.funnel.campaigns.map(function (c, i) {
        return { label: c.name, data: c.counts, backgroundColor: palette[i % palette.length] };
      }),
    },
    options: {
      // logarithmic: a few won deals stay visible beside thousands of recycles
      scales: { y: { type: "logarithmic", title: { display: true, text: "recycles (log scale)" } } },
      plugins: { legend: { position: "bottom" } },
    },
  });

  draw("chart-reasons", {
    type: "bar",
    data: {
      labels: data.reasons.labels,
      datasets: [
        {
          label: "requalified / recycled (%)",
          data: data.reasons.requalification_rate.map(percent),
          backgroundColor: palette[0],
        },
        {
          label: "accepted / requalified (%)",
          data: data.reasons.acceptance_rate.map(percent),
          backgroundColor: palette[2],
        },
      ],
    },
    options: {
      scales: { y: { beginAtZero: true, title: { display: true, text: "%" } } },
      plugins: {
        legend: { position: "bottom" },
        tooltip: {
          callbacks: {
            afterLabel: function (item) {
              return "recycled: " + data.reasons.recycled[item.dataIndex];
            },
          },
        },
      },
    },
  });

  draw("chart-weeks", {
    type: "line",
    data: {
      labels: data.weeks.labels,
      datasets: [
        { label: "sent", data: data.weeks.sent, borderColor: palette[0], backgroundColor: palette[0] },
        { label: "human opens", data: data.weeks.human_opens, borderColor: palette[2], backgroundColor: palette[2] },
        { label: "machine opens", data: data.weeks.machine_opens, borderColor: palette[5], backgroundColor: palette[5], borderDash: [4, 4] },
        { label: "clicks", data: data.weeks.clicks, borderColor: palette[1], backgroundColor: palette[1] },
      ],
    },
    options: {
      interaction: { mode: "index", intersect: false },
      scales: { y: { beginAtZero: true, title: { display: true, text: "emails" } } },
      plugins: { legend: { position: "bottom" } },
    },
  });

  data.steps.forEach(function (chart, i) {
    draw("chart-steps-" + i, {
      type: "bar",
      data: {
        labels: chart.labels,
        datasets: [{ label: "sent", data: chart.sent, backgroundColor: palette[i % palette.length] }],
      },
      options: {
        scales: { y: { beginAtZero: true } },
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              afterLabel: function (item) {
                var reach = percent(chart.reach[item.dataIndex]);
                return reach === null ? "" : reach + "% of the first step";
              },
            },
          },
        },
      },
    });
  });

  document.body.setAttribute("data-charts-drawn", String(drawn));
})();
