// The live learning-curves chart of automl_nb's SweepDashboard (an anywidget ES module).
// Python sends numbered deltas (points appended, trial facts changed); a view that misses one
// asks for the whole history. Drawn as SVG: the top trials as lines (legend toggles them), the
// others as one 10-90% band, the early-termination policy's thresholds dashed. Hover: a
// trial's parameters and status; click: selects the trial (model "selected").

const SVG = "http://www.w3.org/2000/svg";
const W = 760, H = 300, M = { left: 52, right: 150, top: 14, bottom: 34 };
const TEXT = "var(--jp-ui-font-color1, #1f1f1f)";
const MUTED = "var(--jp-ui-font-color2, #616161)";
const GRID = "var(--jp-border-color2, #e0e0e0)";
const THRESHOLD = "var(--jp-error-color1, #b3261e)";
const DASHES = { solid: "", dashed: "6 3", dotted: "2 3" };

function node(tag, attrs = {}, parent = null) {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) element.setAttribute(key, value);
  if (parent) parent.appendChild(element);
  return element;
}

function ticks(low, high, count) {
  const step = Math.pow(10, Math.floor(Math.log10((high - low) / count || 1)));
  const nice = [1, 2, 5, 10].map((f) => f * step).find((s) => (high - low) / s <= count) || step * 10;
  const out = [];
  for (let v = Math.ceil(low / nice) * nice; v <= high + 1e-12; v += nice) out.push(+v.toPrecision(12));
  return out;
}

function quantile(sorted, q) {
  const at = (sorted.length - 1) * q, i = Math.floor(at);
  return i + 1 < sorted.length ? sorted[i] + (sorted[i + 1] - sorted[i]) * (at - i) : sorted[i];
}

function render({ model, el }) {
  const state = { seq: -1, points: {}, trials: {}, hidden: new Set(), series: 1, frame: 0 };
  const root = document.createElement("div");
  root.className = "automl-live-chart";
  root.style.cssText = `position:relative;max-width:100%;color:${TEXT};font-size:11px`;
  const bar = document.createElement("div");
  bar.style.cssText = "display:flex;gap:4px;margin:2px 0";
  const svg = node("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", preserveAspectRatio: "xMinYMin meet" });
  svg.style.cssText = `max-width:${W}px;display:block`;
  const legend = document.createElement("div");
  legend.className = "automl-chart-legend";
  legend.style.cssText = "display:flex;flex-wrap:wrap;gap:2px 10px;max-width:760px";
  const tip = document.createElement("div");
  tip.className = "automl-chart-tip";
  tip.style.cssText = "position:absolute;display:none;pointer-events:none;z-index:10;padding:4px 6px;" +
    "background:var(--jp-layout-color0, #fff);border:1px solid var(--jp-border-color1, #bdbdbd);" +
    "border-radius:3px;max-width:360px;white-space:normal;box-shadow:0 1px 4px rgba(0,0,0,.25)";
  root.append(bar, svg, legend, tip);
  el.appendChild(root);

  function seriesButtons() {
    bar.replaceChildren();
    const names = [model.get("metric") || "metric", ...model.get("series")];
    names.forEach((name, i) => {
      const button = document.createElement("button");
      button.textContent = i ? name : `validation ${name}`;
      button.className = "automl-chart-series" + (i + 1 === state.series ? " automl-chart-series-on" : "");
      button.style.cssText = "font-size:11px;padding:1px 6px;border:1px solid var(--jp-border-color1, #bdbdbd);" +
        `border-radius:3px;cursor:pointer;color:${TEXT};background:` +
        (i + 1 === state.series ? "var(--jp-layout-color2, #eee);font-weight:bold" : "transparent");
      button.onclick = () => { state.series = i + 1; seriesButtons(); schedule(); };
      bar.appendChild(button);
    });
  }

  function schedule() {
    if (!state.frame) state.frame = requestAnimationFrame(() => { state.frame = 0; draw(); });
  }

  function apply(delta) {
    for (const id of delta.reset || []) state.points[id] = [];
    for (const [id, points] of Object.entries(delta.points || {})) {
      (state.points[id] = state.points[id] || []).push(...points);
    }
    Object.assign(state.trials, delta.trials || {});
  }

  function onDelta() {
    const delta = model.get("delta");
    if (!delta || delta.seq === undefined || delta.seq <= state.seq) return;
    if (delta.seq !== state.seq + 1) { model.send({ type: "history" }); return; }  // missed one
    apply(delta);
    state.seq = delta.seq;
    schedule();
  }

  function onMessage(message) {
    if (message.type !== "history") return;
    state.points = message.points; state.trials = message.trials; state.seq = message.seq;
    onDelta();  // one set after the history was sent
    schedule();
  }

  function showTip(event, html) {
    tip.innerHTML = html;
    const box = root.getBoundingClientRect();
    tip.style.display = "block";
    tip.style.left = `${Math.min(event.clientX - box.left + 12, box.width - 200)}px`;
    tip.style.top = `${event.clientY - box.top + 12}px`;
  }

  const escape = (text) => String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

  function draw() {
    svg.replaceChildren();
    const s = state.series, threshold = s === 1 ? model.get("thresholds") : [];
    const ids = Object.keys(state.points).filter((id) => state.points[id].length);
    const top = ids.filter((id) => state.trials[id] && state.trials[id].top);
    const others = ids.filter((id) => !(state.trials[id] && state.trials[id].top));
    const shown = top.filter((id) => !state.hidden.has(id));
    let xs = [], ys = [];
    for (const id of shown.concat(others)) {
      for (const p of state.points[id]) if (p[s] !== null && p[0] !== null) { xs.push(p[0]); ys.push(p[s]); }
    }
    for (const line of threshold) for (const [x, y] of line.points) { xs.push(x); ys.push(y); }
    if (!xs.length) {
      node("text", { x: W / 2, y: H / 2, "text-anchor": "middle", fill: MUTED }, svg).textContent = "no evaluation yet";
      drawLegend(top, others.length);
      return;
    }
    // A loop, not Math.min(...xs): 1,000 trials' points are too many arguments for a call.
    const low = (a) => a.reduce((m, v) => (v < m ? v : m), Infinity);
    const high = (a) => a.reduce((m, v) => (v > m ? v : m), -Infinity);
    const x0 = Math.min(1, low(xs)), x1 = Math.max(x0 + 1, high(xs));
    let y0 = low(ys), y1 = high(ys);
    const pad = (y1 - y0) * 0.06 || Math.abs(y1) * 0.1 || 0.1;
    y0 -= pad; y1 += pad;
    const X = (v) => M.left + ((v - x0) / (x1 - x0)) * (W - M.left - M.right);
    const Y = (v) => H - M.bottom - ((v - y0) / (y1 - y0)) * (H - M.top - M.bottom);
    const axes = node("g", { class: "automl-chart-axes", "font-size": 10, fill: MUTED }, svg);
    for (const v of ticks(y0, y1, 5)) {
      node("line", { x1: M.left, x2: W - M.right, y1: Y(v), y2: Y(v), stroke: GRID }, axes);
      node("text", { x: M.left - 4, y: Y(v) + 3, "text-anchor": "end" }, axes).textContent = +v.toFixed(4);
    }
    for (const v of ticks(x0, x1, 8).filter(Number.isInteger)) {
      node("text", { x: X(v), y: H - M.bottom + 14, "text-anchor": "middle" }, axes).textContent = v;
    }
    node("text", { x: (M.left + W - M.right) / 2, y: H - 4, "text-anchor": "middle" }, axes).textContent = "epoch";
    const path = (points) => points.filter((p) => p[s] !== null && p[0] !== null)
      .map((p, i) => `${i ? "L" : "M"}${X(p[0]).toFixed(1)},${Y(p[s]).toFixed(1)}`).join("");

    if (others.length) drawBand(others, X, Y, s);
    const selected = model.get("selected");
    const lines = node("g", { class: "automl-chart-lines" }, svg);
    for (const id of shown) {
      const trial = state.trials[id] || {}, d = path(state.points[id]);
      if (!d) continue;
      const mark = id === selected, width = (trial.best ? 2.8 : 1.5) + (mark ? 1.5 : 0);
      node("path", { d, fill: "none", stroke: trial.colour || TEXT, "stroke-width": width,
                     "stroke-dasharray": DASHES[trial.style] || "", class: "automl-curve-line" }, lines);
      const last = state.points[id].filter((p) => p[s] !== null).slice(-1)[0];
      if (trial.cut && last) {
        node("text", { x: X(last[0]), y: Y(last[s]) + 4, "text-anchor": "middle", fill: trial.colour,
                       "font-weight": "bold", "font-size": 13 }, lines).textContent = "×";
      }
      // A wide transparent stroke over the line: what the pointer hovers and clicks.
      const hit = node("path", { d, fill: "none", stroke: "transparent", "stroke-width": 10,
                                 "pointer-events": "stroke", "data-trial": id,
                                 class: `automl-curve automl-curve-${id}` + (mark ? " automl-curve-selected" : "") }, lines);
      hit.style.cursor = "pointer";
      hit.addEventListener("mousemove", (event) => {
        const at = new DOMPoint(event.clientX, event.clientY).matrixTransform(svg.getScreenCTM().inverse());
        const near = state.points[id].reduce((a, p) => (Math.abs(X(p[0]) - at.x) < Math.abs(X(a[0]) - at.x) ? p : a));
        const value = near[s] === null ? "–" : near[s].toFixed(4);
        showTip(event, `<b>trial ${escape(trial.label || id)}</b><br>${escape(trial.params || "")}` +
          `<br>${escape(trial.status || "")}<br>epoch ${near[0]}: ${value}`);
      });
      hit.addEventListener("mouseleave", () => { tip.style.display = "none"; });
      hit.addEventListener("click", () => {
        model.set("selected", id);
        model.save_changes();
        // The row is marked by Python; bring it into view once it is drawn.
        setTimeout(() => {
          const row = el.closest(".automl-dashboard")?.querySelector(`.automl-trial-${CSS.escape(id)}`);
          if (row) row.scrollIntoView({ block: "nearest" });
        }, 300);
      });
    }
    const limits = node("g", { class: "automl-chart-thresholds" }, svg);
    for (const line of threshold) {
      const points = line.points;
      const d = points.length === 1
        ? `M${X(points[0][0] - 0.35)},${Y(points[0][1])}L${X(points[0][0] + 0.35)},${Y(points[0][1])}`
        : points.map(([x, y], i) => `${i ? "L" : "M"}${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join("");
      node("path", { d, fill: "none", stroke: THRESHOLD, "stroke-width": 1.4, "stroke-dasharray": "4 3",
                     class: "automl-threshold", "data-label": line.label }, limits);
      const hit = node("path", { d, fill: "none", stroke: "transparent", "stroke-width": 8,
                                 "pointer-events": "stroke" }, limits);
      hit.addEventListener("mousemove", (event) => showTip(event, `<b>${escape(line.label)}</b><br>` +
        points.map(([x, y]) => `report ${x}: ${y.toFixed(4)}`).join("<br>")));
      hit.addEventListener("mouseleave", () => { tip.style.display = "none"; });
      const [lx, ly] = points[points.length - 1];
      node("text", { x: Math.min(X(lx) + 4, W - 4), y: Y(ly) - 3, fill: THRESHOLD, "font-size": 9 },
           limits).textContent = line.label.split(":")[0];
    }
    drawLegend(top, others.length);
  }

  function drawBand(others, X, Y, s) {
    const byEpoch = new Map();
    for (const id of others) for (const p of state.points[id]) {
      if (p[s] === null || p[0] === null) continue;
      if (!byEpoch.has(p[0])) byEpoch.set(p[0], []);
      byEpoch.get(p[0]).push(p[s]);
    }
    const epochs = [...byEpoch.keys()].sort((a, b) => a - b);
    const rows = epochs.map((e) => { const v = byEpoch.get(e).sort((a, b) => a - b); return [e, quantile(v, 0.1), quantile(v, 0.5), quantile(v, 0.9)]; });
    const band = node("g", { class: "automl-chart-band" }, svg);
    const upper = rows.map(([e, , , hi]) => `${X(e).toFixed(1)},${Y(hi).toFixed(1)}`);
    const lower = rows.slice().reverse().map(([e, lo]) => `${X(e).toFixed(1)},${Y(lo).toFixed(1)}`);
    const area = node("polygon", { points: upper.concat(lower).join(" "), fill: "grey", "fill-opacity": 0.2,
                                   stroke: "grey", "stroke-opacity": 0.3 }, band);
    node("polyline", { points: rows.map(([e, , mid]) => `${X(e).toFixed(1)},${Y(mid).toFixed(1)}`).join(" "),
                       fill: "none", stroke: "grey", "stroke-width": 1, "stroke-dasharray": "2 2" }, band);
    area.addEventListener("mousemove", (event) => showTip(event, `${others.length} other trials: ` +
      "the band holds 10-90% of their values at each epoch, the dotted line their median"));
    area.addEventListener("mouseleave", () => { tip.style.display = "none"; });
  }

  function drawLegend(top, othersCount) {
    legend.replaceChildren();
    for (const id of top) {
      const trial = state.trials[id] || {};
      const entry = document.createElement("span");
      entry.className = "automl-legend-entry" + (state.hidden.has(id) ? " automl-legend-off" : "");
      entry.dataset.trial = id;
      entry.title = "click to hide or show this trial's curve";
      entry.style.cssText = "cursor:pointer;white-space:nowrap" + (state.hidden.has(id) ? ";opacity:.4;text-decoration:line-through" : "");
      entry.innerHTML = `<span style="display:inline-block;width:14px;height:3px;vertical-align:middle;margin-right:3px;` +
        `background:${trial.colour || TEXT}"></span>${escape(trial.label || id)}${trial.cut ? " (cut)" : ""}`;
      entry.onclick = () => { state.hidden.has(id) ? state.hidden.delete(id) : state.hidden.add(id); schedule(); };
      legend.appendChild(entry);
    }
    if (othersCount) {
      const rest = document.createElement("span");
      rest.style.color = MUTED;
      rest.textContent = `+${othersCount} others (grey band: 10-90%)`;
      legend.appendChild(rest);
    }
  }

  const redraw = () => { seriesButtons(); schedule(); };
  model.on("change:delta", onDelta);
  model.on("msg:custom", onMessage);
  model.on("change:thresholds", schedule);
  model.on("change:selected", schedule);
  model.on("change:metric", redraw);
  redraw();
  model.send({ type: "history" });
  return () => {
    model.off("change:delta", onDelta);
    model.off("msg:custom", onMessage);
    model.off("change:thresholds", schedule);
    model.off("change:selected", schedule);
    model.off("change:metric", redraw);
    if (state.frame) cancelAnimationFrame(state.frame);
  };
}

export default { render };
