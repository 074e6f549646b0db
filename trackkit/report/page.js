// trackkit report: draws the curves and the sweep view from the JSON block #tk-data with plotly.
// Every string from a run (names, metric and config keys, values) goes through esc(): plotly
// reads its labels as pseudo-HTML, escaped text is shown as text.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("tk-data").textContent);
  var runs = data.runs, colors = data.colors;
  var many = runs.length > 25;
  function esc(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }
  function color(i) { return colors[i % colors.length]; }
  var config = {displaylogo: false, responsive: true, modeBarButtonsToRemove: ["sendDataToCloud"]};
  var state = {x: "step", log: false, smooth: 0};

  function smooth(v, w) {  // TensorBoard's debiased exponential moving average
    if (!w) return v;
    var out = new Array(v.length), last = 0, n = 0;
    for (var i = 0; i < v.length; i++) {
      var x = v[i];
      if (x === null || !isFinite(x)) { out[i] = x; continue; }
      last = last * w + (1 - w) * x; n++;
      out[i] = last / (1 - Math.pow(w, n));
    }
    return out;
  }
  function xs(c) {
    if (state.x === "step") return c.s;
    if (state.x === "relative") return c.t;
    var start = runs[c.run].start || 0;
    return c.t.map(function (t) { return new Date((start + t) * 1000); });
  }
  var xtitle = {step: "step", relative: "time since the run started (s)", wall: "wall clock"};

  function traces(key) {
    return data.curves[key].map(function (c) {
      return {
        type: "scatter", mode: c.s.length === 1 ? "markers" : "lines", x: xs(c), y: smooth(c.v, state.smooth),
        name: esc(runs[c.run].label), line: {color: color(c.run), width: 1.5}, marker: {color: color(c.run)},
        hovertemplate: "%{fullData.name}<br>" + esc(xtitle[state.x]) + " %{x}<br>" + esc(key) + " %{y}<extra></extra>"
      };
    });
  }
  function layout(key) {
    return {
      title: {text: esc(key) + " <span style='font-size:11px'>(" + esc(data.goals[key] || "") + ")</span>",
              x: 0.04, xanchor: "left"},
      margin: {l: 60, r: 16, t: 40, b: 48}, showlegend: !many, legend: {font: {size: 11}},
      xaxis: {title: {text: esc(xtitle[state.x])}, type: state.x === "wall" ? "date" : "linear"},
      yaxis: {type: state.log ? "log" : "linear"}, hovermode: "closest"
    };
  }
  var keys = Object.keys(data.curves), divs = {};
  var box = document.getElementById("tk-curves");
  keys.forEach(function (key) {
    var div = document.createElement("div");
    div.className = "plot"; div.setAttribute("data-metric", key);
    box.appendChild(div); divs[key] = div;
  });
  function drawAll(done) {
    var i = 0;
    (function next() {
      if (i >= keys.length) { if (done) done(); return; }
      var key = keys[i++];
      Plotly.react(divs[key], traces(key), layout(key), config).then(function () { setTimeout(next, 0); });
    })();
  }

  function spansDecades(values) {  // a learning rate from 1e-4 to 1e-1: a log axis
    var known = values.filter(function (v) { return v !== null; });
    var pos = known.filter(function (v) { return v > 0; });
    if (pos.length < known.length || pos.length < 2) return false;
    return Math.max.apply(null, pos) / Math.min.apply(null, pos) >= 100;
  }
  function sweep() {
    var sw = data.sweep;
    if (!sw) return Promise.resolve();
    var label = function (n) { return esc(runs[sw.runs[n]].label); };
    var dims = sw.params.map(function (p) {
      if (p.numeric && spansDecades(p.values))  // parallel coordinates have no log axis: log10 of the values
        return {label: "log10(" + esc(p.key) + ")",
                values: p.values.map(function (v) { return v === null ? NaN : Math.log10(v); })};
      if (p.numeric) return {label: esc(p.key), values: p.values.map(function (v) { return v === null ? NaN : v; })};
      var cats = [];
      p.values.forEach(function (v) { if (cats.indexOf(v) < 0) cats.push(v); });
      return {label: esc(p.key), values: p.values.map(function (v) { return cats.indexOf(v); }),
              tickvals: cats.map(function (_, i) { return i; }), ticktext: cats.map(function (v) { return esc(v); })};
    });
    dims.push({label: esc(sw.objective), values: sw.values});
    var canvas = document.createElement("canvas");
    var webgl = !!(window.WebGLRenderingContext && (canvas.getContext("webgl") || canvas.getContext("experimental-webgl")));
    var par;
    if (!webgl) {  // plotly draws parallel coordinates with WebGL; the scatter plots below need none
      document.getElementById("tk-parcoords").textContent =
        "Parallel coordinates need WebGL, which this browser has turned off; the scatter plots below show the same runs.";
      par = Promise.resolve();
    } else par = Plotly.newPlot("tk-parcoords", [{
      type: "parcoords", dimensions: dims,
      line: {color: sw.values, colorscale: "Viridis", reversescale: sw.goal === "min", showscale: true}
    }], {margin: {l: 60, r: 60, t: 56, b: 24}}, config);
    var grid = document.getElementById("tk-scatter");
    var plots = sw.params.map(function (p) {
      var div = document.createElement("div");
      div.className = "plot"; grid.appendChild(div);
      return Plotly.newPlot(div, [{
        type: "scatter", mode: "markers", x: p.values.map(function (v) { return p.numeric ? v : esc(v); }),
        y: sw.values, text: sw.runs.map(function (_, n) { return label(n); }),
        marker: {size: 9, color: sw.runs.map(function (r) { return color(r); })},
        hovertemplate: "%{text}<br>" + esc(p.key) + " %{x}<br>" + esc(sw.objective) + " %{y}<extra></extra>"
      }], {
        title: {text: esc(p.key), x: 0.04, xanchor: "left"}, margin: {l: 56, r: 12, t: 40, b: 48},
        xaxis: {title: {text: esc(p.key)}, type: p.numeric ? (spansDecades(p.values) ? "log" : "linear") : "category"},
        yaxis: {title: {text: esc(sw.objective)}}
      }, config);
    });
    return Promise.all([par].concat(plots));
  }

  var t0 = performance.now();
  function finished() {
    window.tkRenderMs = performance.now() - t0;
    document.body.setAttribute("data-rendered", "yes");
  }
  if (keys.length) {
    var redraw = function () { document.body.setAttribute("data-rendered", "no"); t0 = performance.now(); drawAll(finished); };
    document.getElementById("tk-x").addEventListener("change", function (e) { state.x = e.target.value; redraw(); });
    document.getElementById("tk-log").addEventListener("change", function (e) { state.log = e.target.checked; redraw(); });
    var slider = document.getElementById("tk-smooth"), shown = document.getElementById("tk-smooth-v");
    slider.addEventListener("change", function () { state.smooth = parseFloat(slider.value); redraw(); });
    slider.addEventListener("input", function () { shown.textContent = slider.value; });
  }
  drawAll(function () { sweep().then(finished, finished); });
})();
