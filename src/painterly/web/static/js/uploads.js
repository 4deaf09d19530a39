// The photo and the paintings: uploads, the list of those picked, the paintings that come
// with painterly, and the drop zones.

import { $, api, el, megabytes, orList, showError } from "./api.js";
import { updateStart } from "./form.js";
import { state } from "./state.js";

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
export async function showPaintings() {
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

export function wireDrop(kind) {
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

// The photo's drop zone names the formats the server reads, as the server names them.
export function showFormats() {
  $("content-drop").querySelector("small").textContent = orList(state.schema.formats);
}
