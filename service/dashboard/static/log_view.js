// The run page's live step log: polls the log API with a cursor, renders ANSI colours (ansi_up, vendored),
// keeps at most MAX_LOG_LINES on the page (the whole capped log is a link away) and shows the cut marker.
import { AnsiUp } from "./vendor/ansi_up.js";
import { el } from "./dom.js";

const LOG_POLL_MS = 1000;
const MAX_LOG_LINES = 5000;
const logView = document.getElementById("log-view");
const logPre = document.getElementById("log");
const follow = document.getElementById("log-follow");
const ansi = new AnsiUp();
ansi.escape_html = true;
let log = null; // {step, cursor, finished, timer, shown, dropped, generation}
let onOpen = () => {};

/** The log being shown: {step, finished, ...}, or null. */
export function currentLog() {
  return log;
}

/** Called with the step's name whenever a log is opened (the page marks its row). */
export function onLogOpened(callback) {
  onOpen = callback;
}

function stepUrl(template, step) {
  return template.replace("STEP", step.split("/").map(encodeURIComponent).join("/"));
}

export function openLog(step) {
  if (log && log.timer) clearTimeout(log.timer);
  log = { step, cursor: "0", finished: false, timer: null, shown: 0, dropped: 0, generation: (log ? log.generation : 0) + 1 };
  logPre.replaceChildren();
  document.getElementById("log-title").textContent = `· ${step}`;
  const raw = document.getElementById("log-raw");
  raw.href = stepUrl(logView.dataset.rawUrl, step);
  raw.hidden = false;
  document.getElementById("log-dropped").hidden = true;
  onOpen(step);
  pollLog(log.generation);
}

function ansiFragment(line) {
  // ansi_up escapes <, >, & and quotes; its colours are style attributes, which the page's CSP does not
  // apply from markup, so they are moved to the CSSOM (allowed) instead of loosening the CSP
  const template = document.createElement("template");
  template.innerHTML = ansi.ansi_to_html(line) || " ";
  for (const node of template.content.querySelectorAll("[style]")) {
    const css = node.getAttribute("style");
    node.removeAttribute("style");
    node.style.cssText = css;
  }
  return template.content;
}

function appendLines(lines, annotations = []) {
  const fragment = document.createDocumentFragment();
  // workflow commands (::error file=…::…), read by the server's parser: PIPELINES.md "Annotations"
  const marked = new Map(annotations.map((a) => [a.index, a]));
  for (const [index, line] of lines.entries()) {
    const span = el("span", { class: "line" });
    const annotation = marked.get(index);
    if (annotation) {
      span.classList.add("annotation", `annotation-${annotation.level}`);
      const where = annotation.file ? ` ${annotation.file}${annotation.line ? `:${annotation.line}` : ""}` : "";
      span.title = `${annotation.level}${where}${annotation.title ? ` (${annotation.title})` : ""}`;
      span.textContent = line;
    } else if (line.startsWith("[stepline]") && line.includes("were cut")) {
      span.classList.add("cut-marker");
      span.textContent = line;
    } else {
      span.append(ansiFragment(line));
    }
    fragment.append(span);
  }
  const atBottom = logPre.scrollHeight - logPre.scrollTop - logPre.clientHeight < 40;
  logPre.append(fragment);
  log.shown += lines.length;
  while (log.shown > MAX_LOG_LINES) { // keep the page light: drop the oldest lines from the page
    logPre.firstChild.remove();
    log.shown -= 1;
    log.dropped += 1;
  }
  if (log.dropped) {
    const note = document.getElementById("log-dropped");
    note.hidden = false;
    note.textContent = `${log.dropped} earlier lines are not shown here: open the whole log as text.`;
  }
  if (follow.checked && (atBottom || lines.length)) logPre.scrollTop = logPre.scrollHeight;
}

async function pollLog(generation) {
  if (!log || log.generation !== generation) return;
  let wait = LOG_POLL_MS;
  try {
    const url = `${stepUrl(logView.dataset.logApi, log.step)}?after=${encodeURIComponent(log.cursor)}&limit=1000`;
    const response = await fetch(url);
    if (response.ok && log.generation === generation) {
      const data = await response.json();
      if (data.lines.length) appendLines(data.lines, data.annotations || []);
      log.cursor = data.next;
      log.finished = data.finished;
      const meta = data.meta || {};
      document.getElementById("log-status").textContent = data.finished
        ? `finished: ${meta.status || ""}${meta.exit_code !== null && meta.exit_code !== undefined ? ` (exit ${meta.exit_code})` : ""}`
        : "following…";
      if (data.lines.length >= 1000) wait = 0;
    }
  } catch (error) {
    console.warn("log poll failed", error);
  }
  if (log.generation === generation && !log.finished) log.timer = setTimeout(() => pollLog(generation), wait);
}
