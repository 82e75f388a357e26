// Draw the page's figures: each is an empty <div class="plotly-graph-div"> followed by its JSON
// (data, layout, config) in a <script type="application/json" class="figure-data"> block, which
// browsers never run. No inline script, so the page works under the service's
// Content-Security-Policy (script-src 'self').
"use strict";

(function () {
  for (const block of document.querySelectorAll("script.figure-data")) {
    const div = document.getElementById(block.dataset.for);
    if (!div) continue;
    const spec = JSON.parse(block.textContent);
    div.style.height = (Number(div.dataset.height) || 420) + "px";
    div.style.width = "100%";
    window.Plotly.newPlot(div, spec.data, spec.layout, spec.config);
  }
})();
