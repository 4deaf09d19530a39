// painterly's page: builds its form from /api/options, uploads images, starts a job and
// follows it over server-sent events. Plain browser JavaScript, nothing loaded from
// elsewhere. The server keeps every job's state; the page only shows it.
"use strict";

const $ = (id) => document.getElementById(id);
const TERMINAL = ["done", "cancelled", "failed"];
const CURVES = [
  { key: "total", label: "total", color: "#24211c" },
  { key: "content", label: "content", color: "#2f6fb0" },
  { key: "style", label: "style", color: "#c2571a" },
  { key: "tv", label: "TV", color: "#5e8c3a" },
];

const state = {
  schema: null,
  models: [], // the fast models on offer (GET /api/models)
  content: null, // upload info of the photo
  styles: [], // [{info, weight}]
  uploading: 0,
  job: null, // the latest snapshot of the job shown
  history: [], // loss points of the job shown
  hidden: new Set(), // curves switched off in the legend
  events: null, // EventSource of the job shown
  previewVersion: 0,
};

// ------------------------------------------------------------------ helpers

async function api(path, options = {}) {
  const response = await fetch(path, options);
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const detail = body && typeof body.detail === "string" ? body.detail : response.statusText;
    throw new Error(detail || `request failed (${response.status})`);
  }
  return body;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== false && value !== null && value !== undefined) node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function showError(id, message) {
  const node = $(id);
  node.textContent = message || "";
  node.hidden = !message;
}

function megabytes(bytes) {
  return `${Math.round(bytes / 1024 / 1024)} MB`;
}

function duration(seconds) {
  if (!isFinite(seconds)) return "";
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  return m < 60 ? `${m} min ${s} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

function formatValue(value) {
  if (value === null || value === undefined) return "–";
  if (value === 0) return "0";
  const abs = Math.abs(value);
  return abs >= 1e4 || abs < 1e-2 ? value.toExponential(2) : value.toPrecision(3);
}

// ------------------------------------------------------------------ the form

function fieldInput(field) {
  const id = `opt-${field.name}`;
  if (field.slider) {
    const range = el("input", { type: "range", id, name: field.name, min: field.min ?? 0, max: field.max ?? 1, step: "0.05" });
    const shown = el("output", { id: `${id}-value`, for: id });
    range.addEventListener("input", () => { shown.textContent = Number(range.value).toFixed(2); });
    return el("div", { class: "slider" }, range, shown);
  }
  if (field.kind === "bool") {
    return el("input", { type: "checkbox", id, name: field.name });
  }
  if (field.kind === "list") {
    const box = el("div", { class: "chips", id, role: "group", "aria-label": field.label });
    for (const choice of field.choices) {
      const short = choice.replace(/^block(\d+)_conv(\d+)$/, "conv$1_$2");
      box.append(
        el("label", { title: choice },
          el("input", { type: "checkbox", value: choice, name: field.name }),
          el("span", { text: short }))
      );
    }
    return box;
  }
  if (field.choices) {
    const select = el("select", { id, name: field.name });
    for (const choice of field.choices) select.append(el("option", { value: choice, text: choice }));
    return select;
  }
  return el("input", {
    type: "number",
    id,
    name: field.name,
    step: field.kind === "int" ? "1" : "any",
    min: field.min ?? (field.kind === "int" || field.kind === "float" ? "0" : null),
    max: field.max ?? null,
    placeholder: field.nullable ? "none" : null,
    inputmode: field.kind === "int" ? "numeric" : "decimal",
  });
}

function buildForm(schema) {
  const preset = $("opt-preset");
  for (const name of Object.keys(schema.presets)) {
    preset.append(el("option", { value: name, text: name }));
  }
  preset.value = schema.default_preset;
  for (const field of schema.fields) {
    const input = fieldInput(field);
    const help = el("small", { text: field.help });
    const label = field.kind === "list"
      ? el("label", { text: field.label })
      : el("label", { for: `opt-${field.name}`, text: field.label });
    const box = field.kind === "bool"
      ? el("div", { class: "field check" }, input, label, help)
      : el("div", { class: field.kind === "list" ? "field wide" : "field" }, label, input, help);
    box.dataset.field = field.name;
    (field.main ? $("main-fields") : $("more-fields")).append(box);
  }
  preset.addEventListener("change", () => {
    if (!chosenModel()) fillPreset(preset.value);
    showMode();
  });
  fillPreset(preset.value);
  showMode();
}

// Fast models go in the preset menu, each as "model:<id>", under their own heading.
function addModels(models) {
  state.models = models;
  if (!models.length) return;
  const preset = $("opt-preset");
  const chosen = preset.value;
  const presets = el("optgroup", { label: "Presets" }, ...preset.querySelectorAll("option"));
  const fast = el("optgroup", { label: "Fast models" }, ...models.map((m) =>
    el("option", { value: `model:${m.id}`, text: `${m.id} · ${m.styles.join(" + ")}` })));
  preset.replaceChildren(presets, fast);
  preset.value = chosen;
}

// The fast model chosen in the preset menu, or null when a preset is.
function chosenModel() {
  const value = $("opt-preset").value;
  return value.startsWith("model:") ? state.models.find((m) => `model:${m.id}` === value) || null : null;
}

// A model carries its style: no paintings, and only the settings that apply to it.
function showMode() {
  const model = chosenModel();
  $("style-step").hidden = Boolean(model);
  for (const box of document.querySelectorAll("[data-field]")) {
    box.hidden = Boolean(model) && !state.schema.model_fields.includes(box.dataset.field);
  }
  $("preset-help").textContent = model
    ? `Trained on ${model.styles.join(" + ")} · width ${model.width} · ` +
      `${model.iterations} iterations · ${model.encoder} encoder. Paints in one pass.`
    : "Sets every value below; change any of them after.";
  updateStart();
}

function fillPreset(name) {
  const values = state.schema.presets[name];
  for (const field of state.schema.fields) {
    const value = values[field.name];
    if (field.kind === "bool") {
      $(`opt-${field.name}`).checked = Boolean(value);
    } else if (field.kind === "list") {
      for (const box of $(`opt-${field.name}`).querySelectorAll("input")) {
        box.checked = value.includes(box.value);
      }
    } else {
      $(`opt-${field.name}`).value = value === null ? "" : String(value);
    }
    if (field.slider) $(`opt-${field.name}-value`).textContent = Number(value).toFixed(2);
  }
}

function readOptions(names = null) {
  const options = {};
  for (const field of state.schema.fields) {
    if (names && !names.includes(field.name)) continue;
    const input = $(`opt-${field.name}`);
    if (field.kind === "bool") {
      options[field.name] = input.checked;
    } else if (field.kind === "list") {
      options[field.name] = [...input.querySelectorAll("input:checked")].map((b) => b.value);
    } else if (field.kind === "int" || field.kind === "float") {
      const text = input.value.trim();
      if (text === "" && field.nullable) options[field.name] = null;
      else if (text === "" || !isFinite(Number(text))) {
        throw new Error(`${field.label} needs a number`);
      } else options[field.name] = Number(text);
    } else {
      options[field.name] = input.value;
    }
  }
  return options;
}

// ------------------------------------------------------------------ uploads

async function upload(file) {
  const limit = state.schema.limits.max_upload_bytes;
  if (file.size > limit) {
    throw new Error(`${file.name} is ${megabytes(file.size)}; this page takes images up to ${megabytes(limit)}`);
  }
  return api(`/api/uploads?name=${encodeURIComponent(file.name)}`, {
    method: "POST",
    body: file,
    headers: { "Content-Type": file.type || "application/octet-stream" },
  });
}

function pickedItem(info, onRemove, weight) {
  const meta = `${info.width} × ${info.height} px · ${info.format}`;
  const text = el("div", {}, el("div", { class: "name", text: info.name, title: info.name }),
    el("div", { class: "meta", text: meta }));
  if (weight) text.append(weight);
  return el("li", {},
    el("img", { src: `/api/uploads/${info.id}/thumb`, alt: "" }),
    text,
    el("button", { type: "button", class: "remove", "aria-label": `Remove ${info.name}`, text: "×", onclick: onRemove }));
}

function renderPicked() {
  const contentList = $("content-list");
  contentList.replaceChildren();
  if (state.content) {
    contentList.append(pickedItem(state.content, () => { state.content = null; renderPicked(); }));
  }
  const styleList = $("style-list");
  styleList.replaceChildren();
  state.styles.forEach((item, index) => {
    let weight = null;
    if (state.styles.length > 1) {
      const out = el("output", { text: item.weight.toFixed(2) });
      const range = el("input", {
        type: "range", min: "0", max: "2", step: "0.05", value: String(item.weight),
        "aria-label": `Weight of ${item.info.name}`,
        oninput: (e) => { item.weight = Number(e.target.value); out.textContent = item.weight.toFixed(2); },
      });
      weight = el("label", { class: "weight" }, el("span", { text: "weight" }), range, out);
    }
    styleList.append(pickedItem(item.info, () => { state.styles.splice(index, 1); renderPicked(); }, weight));
  });
  updateStart();
}

function updateStart() {
  const model = state.schema && chosenModel();
  const ready = state.content && (model || state.styles.length > 0) && state.uploading === 0;
  $("start").disabled = !ready;
  $("start-hint").hidden = Boolean(ready);
  $("start-hint").textContent = state.uploading ? "Uploading…"
    : model ? "Add a photo to start." : "Add a photo and a painting to start.";
}

async function addFiles(files, kind) {
  const errorId = kind === "content" ? "content-error" : "style-error";
  showError(errorId, "");
  const chosen = kind === "content" ? [...files].slice(0, 1) : [...files];
  const problems = [];
  for (const file of chosen) {
    state.uploading += 1;
    updateStart();
    try {
      const info = await upload(file);
      if (kind === "content") state.content = info;
      else if (state.styles.length < state.schema.limits.max_styles) state.styles.push({ info, weight: 1 });
      else problems.push(`use at most ${state.schema.limits.max_styles} paintings`);
    } catch (err) {
      problems.push(err.message);
    } finally {
      state.uploading -= 1;
    }
    renderPicked();
  }
  showError(errorId, problems.join("\n"));
}

// The paintings that come with painterly: one click adds one, as an upload would.
async function showPaintings() {
  let paintings = [];
  try {
    paintings = await api("/api/paintings");
  } catch {
    return; // the gallery is a convenience: uploads still work
  }
  const list = $("paintings");
  for (const p of paintings) {
    const label = `${p.title}, ${p.artist} (${p.year})`;
    list.append(el("li", {},
      el("button", { type: "button", class: "painting", title: label, "aria-label": `Paint with ${label}`, "data-name": p.name, onclick: () => choosePainting(p) },
        el("img", { src: `/api/paintings/${p.name}/image`, alt: "", loading: "lazy" }),
        el("span", { text: p.title }))));
  }
  $("paintings-head").hidden = paintings.length === 0;
}

async function choosePainting(painting) {
  showError("style-error", "");
  if (state.styles.length >= state.schema.limits.max_styles) {
    showError("style-error", `use at most ${state.schema.limits.max_styles} paintings`);
    return;
  }
  state.uploading += 1;
  updateStart();
  try {
    const info = await api(`/api/paintings/${painting.name}`, { method: "POST" });
    state.styles.push({ info: { ...info, name: painting.title }, weight: 1 });
  } catch (err) {
    showError("style-error", err.message);
  } finally {
    state.uploading -= 1;
  }
  renderPicked();
}

function wireDrop(kind) {
  const zone = $(`${kind}-drop`);
  const input = $(`${kind}-file`);
  input.accept = state.schema.accept;
  $(`${kind}-choose`).addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    addFiles(input.files, kind);
    input.value = "";
  });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    addFiles(e.dataTransfer.files, kind);
  });
}

// ------------------------------------------------------------------ jobs

async function start(event) {
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

async function openJob(id, snapshot = null) {
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
  if (!TERMINAL.includes(job.status)) follow(id);
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
    if (TERMINAL.includes(job.status)) {
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
        if (!TERMINAL.includes(job.status)) follow(id);
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
  if (TERMINAL.includes(shown.status)) return true;
  return !TERMINAL.includes(job.status) && job.version < shown.version;
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

  $("cancel").hidden = TERMINAL.includes(job.status);
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

function applyCompare() {
  const share = Number($("compare").value);
  const before = $("before");
  before.style.clipPath = `inset(0 ${100 - share}% 0 0)`;
  before.hidden = share === 0;
}

// Small results are shown up to 2.5 times their size, so that a 256 px run fills the frame.
function fitImage(img, width, height) {
  const frame = $("frame");
  const room = frame.getBoundingClientRect();
  const scale = Math.min((room.width - 40) / width, (room.height - 40) / height, 2.5);
  img.style.width = `${Math.max(1, Math.floor(width * scale))}px`;
  img.style.height = `${Math.max(1, Math.floor(height * scale))}px`;
}

async function cancel() {
  if (!state.job) return;
  try {
    applySnapshot(await api(`/api/jobs/${state.job.id}/cancel`, { method: "POST" }));
  } catch (err) {
    showError("job-error", err.message);
  }
}

// ------------------------------------------------------------------ loss chart

const MAX_DECADES = 12; // below the largest value, at most
const SUPERSCRIPT = { "-": "⁻", 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹" };

function buildLegend() {
  const legend = $("legend");
  for (const curve of CURVES) {
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

function drawChart() {
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
  const curves = CURVES.filter((c) => !state.hidden.has(c.key));
  let lo = Infinity;
  let hi = -Infinity;
  // The axis fits the curves after their first steps: the content loss starts at almost
  // exactly zero when the run starts from the photo, which would stretch the axis over
  // a dozen empty decades. An early point below the axis is clipped, not lost.
  const skip = points.length > 6 ? 2 : 0;
  for (const p of points.slice(skip)) {
    for (const c of curves) {
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
  for (const c of curves) {
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

// ------------------------------------------------------------------ recent results

let recentTimer = null;

async function refreshRecent() {
  let jobs = [];
  try {
    jobs = await api("/api/jobs");
  } catch {
    return;
  }
  const gallery = $("gallery");
  gallery.replaceChildren();
  $("recent-empty").hidden = jobs.length > 0;
  for (const job of jobs) {
    const thumb = job.has_result ? `/api/jobs/${job.id}/thumb` : `/api/uploads/${job.content.id}/thumb`;
    const made = job.model
      ? `painted by the model ${job.model.id}`
      : `in the style of ${job.styles.map((s) => s.name).join(" + ")}`;
    const badge = {
      queued: job.position > 0 ? `waiting · ${job.position} ahead` : "waiting",
      running: job.run_fraction
        ? `painting · ${Math.floor(100 * job.run_fraction)}%`
        : `painting · ${job.step}/${job.total_steps}`,
      done: new Date(job.created * 1000).toLocaleString([], { dateStyle: "short", timeStyle: "short" }),
      cancelled: job.has_result ? `stopped at ${job.step}` : "cancelled",
      failed: "failed",
    }[job.status];
    const link = el("a", {
      href: `?job=${job.id}`, "data-job": job.id,
      onclick: (e) => { e.preventDefault(); openJob(job.id); },
    },
    el("img", { src: thumb, alt: "", loading: "lazy" }),
    el("div", { class: "caption" },
      el("div", { class: "title", text: job.content.name, title: `${job.content.name} ${made}` }),
      el("div", { class: `badge ${job.status}`, text: badge })));
    gallery.append(el("li", {}, link));
  }
  markCurrent();
  clearTimeout(recentTimer);
  if (jobs.some((j) => !TERMINAL.includes(j.status))) recentTimer = setTimeout(refreshRecent, 3000);
}

function markCurrent() {
  for (const link of document.querySelectorAll(".gallery a")) {
    link.classList.toggle("current", Boolean(state.job) && link.dataset.job === state.job.id);
  }
}

// ------------------------------------------------------------------ start up

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
  const id = new URL(location.href).searchParams.get("job") || localStorage.getItem("painterly.job");
  if (id && /^[0-9a-f]{16}$/.test(id)) openJob(id);
  document.body.dataset.ready = "true";  // the inputs are wired: files picked now count
}

main();
