// One job on the stage: starting it, following it over server-sent events, keeping the
// newest snapshot, showing its status, picture and inputs, and the before/after compare.

import { $, api, duration, el, showError } from "./api.js";
import { drawChart } from "./chart.js";
import { chosenModel, readOptions, updateStart } from "./form.js";
import { markCurrent, refreshRecent } from "./recent.js";
import { ended, state } from "./state.js";

export async function start(event) {
  event.preventDefault();
  showError("start-error", "");
  const model = chosenModel();
  let options;
  try {
    options = readOptions(model ? state.schema.model_fields : null);
  } catch (err) {
    showError("start-error", err.message);
    return;
  }
  const body = model
    ? { content: state.content.id, model: model.id, options }
    : {
      content: state.content.id,
      styles: state.styles.map((s) => ({ id: s.info.id, weight: s.weight })),
      preset: $("opt-preset").value,
      options,
    };
  $("start").disabled = true;
  try {
    const job = await api("/api/jobs", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    openJob(job.id, job);
    refreshRecent();
  } catch (err) {
    showError("start-error", err.message);
  } finally {
    updateStart();
  }
}

export async function openJob(id, snapshot = null) {
  if (state.events) state.events.close();
  state.events = null;
  state.history = [];
  state.previewVersion = 0;
  state.job = null;
  const url = new URL(location.href);
  url.searchParams.set("job", id);
  history.replaceState(null, "", url);
  localStorage.setItem("painterly.job", id);
  let job = snapshot;
  try {
    if (!job) job = await api(`/api/jobs/${id}`);
  } catch {
    forgetJob();
    return;
  }
  $("live").hidden = true;
  $("live").dataset.src = "";
  $("placeholder").hidden = false;
  applySnapshot(job);
  if (!ended(job.status)) follow(id);
  markCurrent();
}

function forgetJob() {
  localStorage.removeItem("painterly.job");
  const url = new URL(location.href);
  url.searchParams.delete("job");
  history.replaceState(null, "", url);
}

function follow(id) {
  const source = new EventSource(`/api/jobs/${id}/events`);
  state.events = source;
  source.onmessage = (message) => {
    const job = JSON.parse(message.data);
    if (state.job && state.job.id !== job.id) return;
    applySnapshot(job);
    if (ended(job.status)) {
      source.close();
      refreshRecent();
    }
  };
  // After a dropped connection the browser reconnects by itself, and the server then
  // sends the whole state again. It gives up for good on an answer that is not a stream
  // (a server that no longer knows the job, say): then ask once what became of it.
  source.onerror = () => {
    if (source.readyState !== EventSource.CLOSED || state.events !== source) return;
    state.events = null;
    api(`/api/jobs/${id}`)
      .then((job) => {
        if (!state.job || state.job.id !== id) return;
        applySnapshot(job);
        if (!ended(job.status)) follow(id);
      })
      .catch((err) => showError("job-error", `lost track of this job: ${err.message}`));
  };
}

// Answers can arrive out of order: the answer to Cancel, a snapshot taken while the job
// still ran, may come after the event stream has shown the job stopped. An older state
// of the job shown never replaces a newer one: an end is final, and while the job runs
// its version (bumped by the server on every change) only goes up.
function isStale(job) {
  const shown = state.job;
  if (!shown || shown.id !== job.id) return false;
  if (ended(shown.status)) return true;
  return !ended(job.status) && job.version < shown.version;
}

function applySnapshot(job) {
  if (isStale(job)) return;
  if (job.history_from === 0) state.history = [];
  if (job.history_from <= state.history.length) {
    state.history = state.history.slice(0, job.history_from).concat(job.history);
  }
  state.job = job;
  renderJob();
  drawChart();
}

// "scale 2 of 3" and `then` for a coarse-to-fine run; nothing for a single scale.
function scaleLabel(job, then) {
  return job.scales > 1 ? `scale ${job.scale} of ${job.scales}${then}` : "";
}

function renderJob() {
  const job = state.job;
  const status = $("status");
  const progress = $("progress");
  const bar = $("bar");
  // The whole run's share done (all scales), else this optimisation's.
  const fraction = job.run_fraction || (job.total_steps ? job.step / job.total_steps : 0);
  progress.hidden = job.status === "failed";
  progress.classList.toggle("waiting", job.status === "queued" || (job.status === "running" && !fraction));
  bar.style.width = `${Math.round(100 * (job.status === "done" ? 1 : fraction))}%`;

  let text = "";
  let detail = "";
  if (job.status === "queued") {
    text = "Waiting";
    detail = job.position > 1 ? `${job.position} jobs ahead of this one` : job.position === 1 ? "next in line" : "starting";
  } else if (job.status === "running") {
    if (job.step === 0 && !job.run_fraction) {
      text = "Preparing";
      detail = "loading the network and the images";
    } else {
      text = `Painting · ${scaleLabel(job, " · ")}step ${job.step} of ${job.total_steps}`;
      // The server's estimate from measured step costs of every scale still to come
      // (painterly.clock); none until a step has been timed.
      detail = job.run_left == null ? "timing the first steps" : `about ${duration(job.run_left)} left`;
    }
  } else if (job.status === "done" && job.model) {
    const m = job.metrics || {};
    text = `Done · painted by ${job.model.id} in ${m.seconds < 10 ? `${m.seconds.toFixed(2)} s` : duration(m.seconds)}`;
    detail = [m.size ? `${m.size[0]} × ${m.size[1]} px` : "", "fast model", m.device].filter(Boolean).join(" · ");
  } else if (job.status === "done") {
    const m = job.metrics || {};
    text = `Done · ${m.steps ?? job.step} steps in ${duration(m.seconds)}`;
    detail = [m.size ? `${m.size[0]} × ${m.size[1]} px` : "", m.encoder, m.device].filter(Boolean).join(" · ");
  } else if (job.status === "cancelled") {
    text = job.has_result ? `Stopped at ${scaleLabel(job, ", ")}step ${job.step} of ${job.total_steps}` : "Cancelled";
    detail = job.has_result ? "the latest image is kept" : "before it started";
  } else {
    text = "Failed";
  }
  const line = [el("span", { text })];  // (replaceChildren would write a null as "null")
  if (detail) line.push(el("span", { class: "muted", text: ` — ${detail}` }));
  status.replaceChildren(...line);

  $("cancel").hidden = ended(job.status);
  const download = $("download");
  download.hidden = !job.has_result;
  if (job.has_result) download.href = `/api/jobs/${job.id}/result`;
  showError("job-error", job.status === "failed" ? job.error : "");
  const notice = $("notice");
  // `command` spans of the core's messages become <code> (text nodes only, never HTML).
  const pieces = (job.notices || []).join(" ").split("`");
  notice.replaceChildren(...pieces.map((piece, i) => (i % 2 ? el("code", { text: piece }) : piece)));
  notice.hidden = !(job.notices && job.notices.length);

  // A fast model paints in one pass: it has no loss curves to show.
  $("chart-head").hidden = $("chart").hidden = Boolean(job.model);
  renderInputs(job);
  showImage(job);
}

function renderInputs(job) {
  const box = $("job-inputs");
  if (box.dataset.job === job.id) return;
  box.dataset.job = job.id;
  const parts = [el("img", { src: `/api/uploads/${job.content.id}/thumb`, alt: job.content.name, title: job.content.name })];
  if (job.model) {
    parts.push(el("span", { class: "op", text: "painted by the model" }));
    parts.push(el("span", { class: "model", text: job.model.id, title: `trained on ${job.model.styles.join(" + ")}` }));
  }
  job.styles.forEach((s, i) => {
    parts.push(el("span", { class: "op", text: i === 0 ? "in the style of" : "+" }));
    parts.push(el("img", { src: `/api/uploads/${s.id}/thumb`, alt: s.name, title: `${s.name} (weight ${s.weight})` }));
  });
  box.replaceChildren(...parts);
}

function showImage(job) {
  let src = null;
  if (job.has_result) src = `/api/jobs/${job.id}/result`;
  else if (job.preview_version > 0 && job.preview_version !== state.previewVersion) {
    src = `/api/jobs/${job.id}/preview?v=${job.preview_version}`;
  }
  showCompare(job);
  if (!src || $("live").dataset.src === src) return;
  state.previewVersion = job.preview_version;
  // Load off-screen first, so the picture never flickers to empty between previews.
  const next = new Image();
  next.onload = () => {
    if (!state.job || state.job.id !== job.id) return;
    const live = $("live");
    fitImage(live, next.naturalWidth, next.naturalHeight);
    live.src = src;
    live.dataset.src = src;
    live.hidden = false;
    $("placeholder").hidden = true;
  };
  next.src = src;
}

// Before and after: once there is a result, a slider lays the photo over it from the left.
function showCompare(job) {
  const ready = Boolean(job.has_result && job.content);
  const control = $("compare-control");
  const before = $("before");
  if (!ready) {
    control.hidden = true;
    before.hidden = true;
    return;
  }
  const src = `/api/uploads/${job.content.id}/view`;
  if (before.dataset.src !== src) {
    before.src = src;
    before.dataset.src = src;
    $("compare").value = "0";
    applyCompare();
  }
  control.hidden = false;
}

export function applyCompare() {
  const share = Number($("compare").value);
  const before = $("before");
  before.style.clipPath = `inset(0 ${100 - share}% 0 0)`;
  before.hidden = share === 0;
}

// Small results are shown up to 2.5 times their size, so that a 256 px run fills the frame.
export function fitImage(img, width, height) {
  const frame = $("frame");
  const room = frame.getBoundingClientRect();
  const scale = Math.min((room.width - 40) / width, (room.height - 40) / height, 2.5);
  img.style.width = `${Math.max(1, Math.floor(width * scale))}px`;
  img.style.height = `${Math.max(1, Math.floor(height * scale))}px`;
}

export async function cancel() {
  if (!state.job) return;
  try {
    applySnapshot(await api(`/api/jobs/${state.job.id}/cancel`, { method: "POST" }));
  } catch (err) {
    showError("job-error", err.message);
  }
}
