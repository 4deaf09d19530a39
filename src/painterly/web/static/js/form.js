// The settings form, built from /api/options: presets, fast models, reading the options,
// and whether the Paint button may be pressed.

import { $, el } from "./api.js";
import { state } from "./state.js";

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

export function buildForm(schema) {
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
export function addModels(models) {
  state.models = models;
  if (!models.length) return;
  const preset = $("opt-preset");
  const chosen = preset.value;
  const presets = el("optgroup", { label: "Presets" }, ...preset.querySelectorAll("option"));
  const fast = el("optgroup", { label: "Fast models" }, ...models.map((m) =>
    el("option", {
      value: `model:${m.id}`,
      text: `${m.id} · ${m.styles.join(" + ")}${m.under_trained ? " · under-trained" : ""}`,
    })));
  preset.replaceChildren(presets, fast);
  preset.value = chosen;
}

// The fast model chosen in the preset menu, or null when a preset is.
export function chosenModel() {
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
      `${model.iterations} iterations · ${model.encoder} encoder. Paints in one pass.` +
      (model.under_trained ? ` Under-trained (${model.under_trained}): its results will be poor.` : "")
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

export function readOptions(names = null) {
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

// The Paint button waits for a photo, a painting unless a fast model is chosen, and every
// upload under way.
export function updateStart() {
  const model = state.schema && chosenModel();
  const ready = state.content && (model || state.styles.length > 0) && state.uploading === 0;
  $("start").disabled = !ready;
  $("start-hint").hidden = Boolean(ready);
  $("start-hint").textContent = state.uploading ? "Uploading…"
    : model ? "Add a photo to start." : "Add a photo and a painting to start.";
}
