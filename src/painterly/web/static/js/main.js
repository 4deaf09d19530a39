// painterly's page: builds its form from /api/options, uploads images, starts a job and
// follows it over server-sent events. Plain browser JavaScript in ES modules, nothing
// loaded from elsewhere. The server keeps every job's state; the page only shows it.
// This module starts the page and wires its controls; the others each do one part.

import { $, api, showError } from "./api.js";
import { buildLegend, drawChart } from "./chart.js";
import { addModels, buildForm } from "./form.js";
import { applyCompare, cancel, fitImage, openJob, start } from "./job.js";
import { refreshRecent } from "./recent.js";
import { state } from "./state.js";
import { showFormats, showPaintings, wireDrop } from "./uploads.js";

async function main() {
  try {
    state.schema = await api("/api/options");
  } catch (err) {
    showError("start-error", `Cannot reach the painterly server: ${err.message}`);
    return;
  }
  $("version").textContent = `v${state.schema.version}`;
  buildForm(state.schema);
  api("/api/models").then(addModels, () => addModels([]));  // the form does not wait
  buildLegend();
  showFormats();
  wireDrop("content");
  wireDrop("style");
  $("setup").addEventListener("submit", start);
  $("cancel").addEventListener("click", cancel);
  $("compare").addEventListener("input", applyCompare);
  showPaintings();
  window.addEventListener("resize", () => {
    drawChart();
    const live = $("live");
    if (!live.hidden && live.naturalWidth) fitImage(live, live.naturalWidth, live.naturalHeight);
  });
  drawChart();
  refreshRecent();
  // A job's id, as the server makes them (the schema's id_pattern): anything else in the
  // address or the stored value is not asked for.
  const jobId = new RegExp(`^(?:${state.schema.id_pattern})$`);
  const id = new URL(location.href).searchParams.get("job") || localStorage.getItem("painterly.job");
  if (id && jobId.test(id)) openJob(id);
  document.body.dataset.ready = "true";  // the inputs are wired: files picked now count
}

main();
