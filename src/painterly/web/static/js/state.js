// The page's shared state: one object that every module reads and changes.

export const state = {
  schema: null, // GET /api/options: the form, the limits and the server's constants
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

// Whether a job in `status` has ended, by the server's own list of final states (the
// schema's terminal_statuses).
export function ended(status) {
  return state.schema.terminal_statuses.includes(status);
}
