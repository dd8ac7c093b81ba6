// Draws the plots of the monitoring page and, on the dashboard, refreshes the panels.
// The panels' HTML is rendered and escaped by the server; this script only places it.
(function () {
  "use strict";
  var panels = document.getElementById("panels");
  var status = document.getElementById("status");

  function say(text, failed) {
    if (status) {
      status.textContent = text;
      status.className = failed ? "failed" : "";
    }
  }

  function plotAll(figures) {
    if (typeof Plotly === "undefined") {
      say("plots unavailable: plotly.js did not load (install shipway[monitoring])", true);
      return;
    }
    panels.querySelectorAll("[data-figure]").forEach(function (div) {
      var figure = figures[div.getAttribute("data-figure")];
      if (figure) {
        Plotly.react(div, figure.data, figure.layout, { displaylogo: false, responsive: true });
      }
    });
  }

  function refresh() {
    if (document.hidden) {
      return;
    }
    var url = document.body.getAttribute("data-panels") + window.location.search;
    fetch(url, { credentials: "same-origin", headers: { accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        // Replace the panels only when their HTML changed, so that an unchanged page keeps
        // its scroll position, open details and plot zoom (plots redraw in place).
        if (data.digest !== document.body.getAttribute("data-digest")) {
          if (typeof Plotly !== "undefined") {
            panels.querySelectorAll("[data-figure]").forEach(function (div) { Plotly.purge(div); });
          }
          panels.innerHTML = data.html;
          document.body.setAttribute("data-digest", data.digest);
        }
        plotAll(data.figures);
        say("updated " + new Date().toLocaleTimeString(), false);
      })
      .catch(function (err) {
        say("refresh failed (" + err.message + "); showing older data", true);
      });
  }

  var data = document.getElementById("figures");
  plotAll(data ? JSON.parse(data.textContent) : {});
  document.querySelectorAll("form.window select").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
  var seconds = Number(document.body.getAttribute("data-refresh") || 0);
  if (seconds > 0) {
    window.setInterval(refresh, seconds * 1000);
  }
})();
