// The loss chart (log scale) and its legend, one button per curve to show or hide it.

import { $, el, formatValue } from "./api.js";
import { state } from "./state.js";

// How each loss part looks. Which parts there are, and their order, is the server's: the
// schema's loss_parts, the losses each point of a job's history carries.
const LOOK = {
  total: { label: "total", color: "#24211c" },
  content: { label: "content", color: "#2f6fb0" },
  style: { label: "style", color: "#c2571a" },
  tv: { label: "TV", color: "#5e8c3a" },
};
const OTHER = "#8a8375"; // the colour of a part with no look here, labelled by its name

const MAX_DECADES = 12; // below the largest value, at most
const SUPERSCRIPT = { "-": "⁻", 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹" };

function curves() {
  return state.schema.loss_parts.map((key) => ({
    key, label: LOOK[key]?.label ?? key, color: LOOK[key]?.color ?? OTHER,
  }));
}

export function buildLegend() {
  const legend = $("legend");
  for (const curve of curves()) {
    const button = el("button", {
      type: "button", "aria-pressed": "true", "data-key": curve.key,
      onclick: () => {
        if (state.hidden.has(curve.key)) state.hidden.delete(curve.key);
        else state.hidden.add(curve.key);
        button.setAttribute("aria-pressed", String(!state.hidden.has(curve.key)));
        drawChart();
      },
    },
    el("span", { class: "swatch" }), el("span", { text: curve.label }), el("span", { class: "value", text: "" }));
    button.querySelector(".swatch").style.background = curve.color;
    legend.append(button);
  }
}

export function drawChart() {
  const canvas = $("chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = "11px system-ui, sans-serif";

  const points = state.history;
  const last = points[points.length - 1] || {};
  for (const button of $("legend").children) {
    button.querySelector(".value").textContent = points.length ? formatValue(last[button.dataset.key]) : "";
  }
  const shown = curves().filter((c) => !state.hidden.has(c.key));
  let lo = Infinity;
  let hi = -Infinity;
  // The axis fits the curves after their first steps: the content loss starts at almost
  // exactly zero when the run starts from the photo, which would stretch the axis over
  // a dozen empty decades. An early point below the axis is clipped, not lost.
  const skip = points.length > 6 ? 2 : 0;
  for (const p of points.slice(skip)) {
    for (const c of shown) {
      const v = p[c.key];
      if (v > 0 && isFinite(v)) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    }
  }
  const left = 46;
  const right = 12;
  const top = 10;
  const bottom = 24;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  ctx.strokeStyle = "#e2dccf";
  ctx.lineWidth = 1;
  ctx.strokeRect(left + 0.5, top + 0.5, plotW, plotH);
  if (!isFinite(lo)) {
    ctx.fillStyle = "#6e685d";
    ctx.textAlign = "center";
    ctx.fillText(state.job ? "Curves appear after the first step." : "No run yet.", left + plotW / 2, top + plotH / 2);
    return;
  }
  lo = Math.max(lo, hi / 10 ** MAX_DECADES);
  let d0 = Math.floor(Math.log10(lo));
  let d1 = Math.ceil(Math.log10(hi));
  if (d1 === d0) { d0 -= 1; d1 += 1; }
  const total = Math.max(state.job ? state.job.total_steps : 1, points.length, 2);
  const x = (i) => left + (plotW * i) / (total - 1 || 1);
  const y = (v) => top + plotH * (1 - (Math.log10(v) - d0) / (d1 - d0));

  // Grid: a line per decade, lighter lines at 2..9 when there are few decades.
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  const every = Math.ceil((d1 - d0) / 6);
  for (let d = d0; d <= d1; d++) {
    if (d1 - d0 <= 4 && d < d1) {
      ctx.strokeStyle = "#f1ece2";
      for (let k = 2; k < 10; k++) {
        const yy = Math.round(y(k * 10 ** d)) + 0.5;
        ctx.beginPath(); ctx.moveTo(left, yy); ctx.lineTo(left + plotW, yy); ctx.stroke();
      }
    }
    if ((d - d0) % every) continue;
    const yy = Math.round(y(10 ** d)) + 0.5;
    ctx.strokeStyle = "#e2dccf";
    ctx.beginPath(); ctx.moveTo(left, yy); ctx.lineTo(left + plotW, yy); ctx.stroke();
    ctx.fillStyle = "#6e685d";
    const exp = String(d).split("").map((ch) => SUPERSCRIPT[ch]).join("");
    ctx.fillText(`10${exp}`, left - 6, yy);
  }
  // Steps along the bottom.
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const stepTick = niceStep(total / 6);
  for (let s = 0; s <= total; s += stepTick) {
    ctx.fillStyle = "#6e685d";
    ctx.fillText(String(s), x(Math.max(0, s - 1)), top + plotH + 6);
  }
  ctx.save();
  ctx.beginPath();
  ctx.rect(left, top, plotW, plotH);
  ctx.clip();
  const stride = Math.max(1, Math.floor(points.length / (plotW * 1.5)));
  ctx.lineJoin = "round";
  for (const c of shown) {
    ctx.strokeStyle = c.color;
    ctx.lineWidth = c.key === "total" ? 2 : 1.5;
    ctx.beginPath();
    let pen = false;
    for (let i = 0; i < points.length; i += stride) {
      const v = points[i][c.key];
      if (!(v > 0) || !isFinite(v)) { pen = false; continue; }
      if (pen) ctx.lineTo(x(i), y(v));
      else ctx.moveTo(x(i), y(v));
      pen = true;
    }
    ctx.stroke();
  }
  ctx.restore();
}

function niceStep(raw) {
  const power = 10 ** Math.floor(Math.log10(Math.max(raw, 1)));
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}
