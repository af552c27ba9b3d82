// Draws the report's charts from the JSON in #report-data with the embedded Chart.js.
// Labels go to canvas text, never into HTML, so names from the data cannot become markup.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var colours = data.colours; // campaign -> its colour, the same on every chart and table
  var series = data.series; // greys for what is not a campaign: sent, opens, rates
  var MIN_PLOT_HEIGHT = 150; // px left for the bars once the legend and the labels are drawn
  var MAX_LABEL = 18; // characters of an axis label; the tooltip gives the whole name
  var drawn = 0;

  Chart.defaults.animation = false;
  Chart.defaults.responsive = true;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  Chart.defaults.color = "#1d2433";
  Chart.defaults.plugins.legend.position = "bottom";
  Chart.defaults.plugins.legend.labels.boxWidth = 14;

  function percent(value) {
    return value === null || value === undefined ? null : Math.round(value * 1000) / 10;
  }

  // Counts: a linear axis from zero with whole-number ticks only (no 0.5 email, no log scale).
  function countAxis(title) {
    return {
      type: "linear",
      beginAtZero: true,
      ticks: { precision: 0 },
      title: { display: Boolean(title), text: title },
    };
  }

  function percentAxis() {
    return {
      type: "linear",
      beginAtZero: true,
      ticks: {
        precision: 0,
        callback: function (value) {
          return value + "%";
        },
      },
    };
  }

  // Category labels cut to MAX_LABEL characters, so a long name cannot squeeze the bars away.
  function labelAxis() {
    return {
      ticks: {
        callback: function (value) {
          var label = String(this.getLabelForValue(value));
          return label.length > MAX_LABEL ? label.slice(0, MAX_LABEL - 1) + "…" : label;
        },
      },
    };
  }

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas) {
      return;
    }
    var chart = new Chart(canvas, config);
    // a long legend (many campaigns) on a narrow screen: make the chart taller, not the bars flat
    var missing = MIN_PLOT_HEIGHT - (chart.chartArea.bottom - chart.chartArea.top);
    if (missing > 0) {
      canvas.parentNode.style.height = canvas.parentNode.clientHeight + Math.ceil(missing) + "px";
      chart.resize();
    }
    drawn += 1;
  }

  var stageLabels = data.funnel.stages;
  draw("chart-funnel", {
    type: "bar",
    data: {
      labels: stageLabels,
      datasets: data.funnel.campaigns.map(function (c) {
        return { label: c.name, data: c.counts, backgroundColor: colours[c.name] };
      }),
    },
    options: {
      scales: { x: labelAxis(), y: countAxis("recycles") },
    },
  });

  draw("chart-reasons", {
    type: "bar",
    data: {
      labels: data.reasons.labels,
      datasets: [
        {
          label: "requalified / recycled",
          data: data.reasons.requalification_rate.map(percent),
          backgroundColor: series[0],
        },
        {
          label: "accepted / requalified",
          data: data.reasons.acceptance_rate.map(percent),
          backgroundColor: series[2],
        },
      ],
    },
    options: {
      scales: { x: labelAxis(), y: percentAxis() },
      plugins: {
        tooltip: {
          callbacks: {
            label: function (item) {
              return item.dataset.label + ": " + item.formattedValue + "%";
            },
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
        { label: "sent", data: data.weeks.sent, borderColor: series[0], backgroundColor: series[0], borderWidth: 2.5 },
        { label: "human opens", data: data.weeks.human_opens, borderColor: series[1], backgroundColor: series[1], pointStyle: "rect" },
        { label: "clicks", data: data.weeks.clicks, borderColor: series[2], backgroundColor: series[2], borderDash: [7, 4], pointStyle: "triangle" },
        { label: "machine opens", data: data.weeks.machine_opens, borderColor: series[3], backgroundColor: series[3], borderDash: [2, 3] },
      ],
    },
    options: {
      interaction: { mode: "index", intersect: false },
      scales: { x: labelAxis(), y: countAxis("emails") },
      plugins: { legend: { labels: { usePointStyle: true } } },
    },
  });

  data.steps.forEach(function (chart, i) {
    draw("chart-steps-" + i, {
      type: "bar",
      data: {
        labels: chart.labels,
        datasets: [{ label: "sent", data: chart.sent, backgroundColor: colours[chart.campaign] }],
      },
      options: {
        scales: { x: labelAxis(), y: countAxis("") },
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
