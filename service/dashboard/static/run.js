// The run page: swaps in the server-rendered panel (header, approvals, steps, audit) while the run is live,
// refreshes the graph and history, and follows the log of the step that matters.
import { currentLog, onLogOpened, openLog } from "./log_view.js";
import { refreshGraph } from "./run_graph.js";

const POLL_MS = 2000;
const panel = document.getElementById("panel");

function isActive() {
  const header = panel.querySelector(".run-header");
  return header !== null && header.dataset.active === "true";
}

async function refreshPanel() {
  // swap only the parts that changed, so a half-typed comment or a button about to be clicked survives
  const response = await fetch(panel.dataset.panelUrl);
  if (!response.ok) return;
  const template = document.createElement("template");
  template.innerHTML = await response.text();
  const fresh = [...template.content.children];
  const current = [...panel.children];
  const sameParts = fresh.length === current.length && fresh.every((part, i) => part.dataset.part === current[i].dataset.part);
  if (!sameParts) {
    panel.replaceChildren(template.content);
  } else {
    fresh.forEach((part, i) => { if (part.outerHTML !== unselected(current[i])) current[i].replaceWith(part); });
  }
  markSelectedStep();
}

function unselected(part) {
  const copy = part.cloneNode(true);
  for (const row of copy.querySelectorAll("tr.selected")) {
    row.classList.remove("selected");
    if (!row.classList.length) row.removeAttribute("class");
  }
  return copy.outerHTML;
}

function markSelectedStep() {
  const log = currentLog();
  for (const row of panel.querySelectorAll("tr.step")) row.classList.toggle("selected", !!log && row.dataset.step === log.step);
}

function defaultStep() {
  const rows = [...panel.querySelectorAll("tr.step")].filter((row) => row.querySelector(".show-log"));
  // a GitHub status links to #step-<name>: open that step's log first
  const linked = location.hash.startsWith("#step-") ? decodeURIComponent(location.hash.slice(6)) : null;
  if (linked && rows.some((r) => r.dataset.step === linked)) return linked;
  const pick = rows.find((r) => r.classList.contains("st-running")) || rows.find((r) => r.classList.contains("st-failed")) || rows[rows.length - 1];
  return pick ? pick.dataset.step : null;
}

panel.addEventListener("click", (event) => {
  const button = event.target.closest(".show-log");
  if (button) openLog(button.dataset.step);
});

// --- the loop ---------------------------------------------------------------------------------------------

async function tick() {
  const wasActive = isActive();
  try {
    await Promise.all([refreshPanel(), refreshGraph()]);
  } catch (error) {
    console.warn("refresh failed", error);
  }
  const log = currentLog();
  if (!log) {
    const step = defaultStep();
    if (step) openLog(step);
  } else if (log.finished && isActive()) {
    // a retried step writes a new attempt: follow the latest
    const row = panel.querySelector(`tr.step[data-step="${CSS.escape(log.step)}"]`);
    if (row && row.dataset.finished === "false") openLog(log.step);
  }
  if (wasActive || isActive()) setTimeout(tick, POLL_MS); // one more refresh after the run ends shows its end
}

onLogOpened(markSelectedStep);
tick();
