// Recent results: the server's latest jobs as a gallery, refreshed while any still runs.
// This module and job.js import each other (a click here opens a job; a job that starts
// or ends refreshes the list); both only call the other after start-up, which ES modules
// allow.

import { $, api, el } from "./api.js";
import { openJob } from "./job.js";
import { ended, state } from "./state.js";

let recentTimer = null;

export async function refreshRecent() {
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
  if (jobs.some((j) => !ended(j.status))) recentTimer = setTimeout(refreshRecent, 3000);
}

export function markCurrent() {
  for (const link of document.querySelectorAll(".gallery a")) {
    link.classList.toggle("current", Boolean(state.job) && link.dataset.job === state.job.id);
  }
}
