// Run page: the live execution graph (dagre layout, SVG), state details, the live step log and the history table.
// Everything user-provided is put in the page with textContent or through AnsiUp (which escapes HTML).
import { AnsiUp } from "./vendor/ansi_up.js";

const SVG = "http://www.w3.org/2000/svg";
const POLL_MS = 2000;
const LOG_POLL_MS = 1000;
const GRAPH_MAX_HEIGHT = 700;
const MAX_LOG_LINES = 5000; // lines kept on the page; the whole (capped) log is a link away
const panel = document.getElementById("panel");
const graphBox = document.getElementById("graph");

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function isActive() {
  const header = panel.querySelector(".run-header");
  return header !== null && header.dataset.active === "true";
}

function when(epoch) {
  if (!epoch) return "–";
  return new Date(epoch * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

// --- the panel (header, steps, approvals, audit): server-rendered HTML swapped in while live -------------

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

// --- the graph --------------------------------------------------------------------------------------------

let graphModel = null;
let graphShape = "";
let selectedState = null;

function nodeSize(node) {
  const label = Math.max(node.name.length, node.type.length + 2);
  return { width: Math.min(260, Math.max(90, label * 7.2 + 24)), height: node.kind === "terminal" ? 28 : 40 };
}

function layoutGraph(model) {
  const g = new dagre.graphlib.Graph({ compound: true, multigraph: true });
  g.setGraph({ rankdir: "TB", nodesep: 28, ranksep: 36, edgesep: 12, marginx: 16, marginy: 16 });
  g.setDefaultEdgeLabel(() => ({}));
  const groups = new Set(model.nodes.filter((n) => n.group).map((n) => n.id));
  for (const node of model.nodes) {
    if (groups.has(node.id)) {
      // a group is a cluster; edges meet its header ("in") and its join ("out"), as dagre cannot route to clusters
      g.setNode(node.id, { node, cluster: true });
      g.setNode(node.id + "::in", { node, role: "in", ...nodeSize(node) });
      g.setNode(node.id + "::out", { node, role: "out", width: 14, height: 14 });
      g.setParent(node.id + "::in", node.id);
      g.setParent(node.id + "::out", node.id);
    } else {
      g.setNode(node.id, { node, ...nodeSize(node) });
    }
    if (node.parent) g.setParent(node.id, node.parent);
  }
  model.edges.forEach((edge, index) => {
    const source = groups.has(edge.source) ? edge.source + (edge.kind === "group_start" ? "::in" : "::out") : edge.source;
    const target = groups.has(edge.target) ? edge.target + (edge.kind === "group_end" ? "::out" : "::in") : edge.target;
    const label = edge.label || "";
    g.setEdge(source, target, { edge, label, width: label ? label.length * 5.6 + 8 : 0, height: label ? 14 : 0, labelpos: "c" }, "e" + index);
  });
  dagre.layout(g);
  return g;
}

function drawGraph(model) {
  const g = layoutGraph(model);
  const size = g.graph();
  // tall pipelines are scaled down to fit the box (down to half size); wider ones scroll
  const scale = Math.max(0.5, Math.min(1, GRAPH_MAX_HEIGHT / size.height, graphBox.clientWidth / size.width || 1));
  const root = svg("svg", {
    width: Math.ceil(size.width * scale), height: Math.ceil(size.height * scale),
    viewBox: `0 0 ${Math.ceil(size.width)} ${Math.ceil(size.height)}`, role: "img", "aria-label": "execution graph",
  });
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#8c959f" }));
  defs.append(marker);
  root.append(defs);
  const clusters = svg("g");
  const edges = svg("g");
  const nodes = svg("g");
  root.append(clusters, edges, nodes);
  for (const id of g.nodes()) {
    const data = g.node(id);
    if (data.cluster) clusters.append(drawCluster(id, data));
    else nodes.append(drawNode(id, data));
  }
  for (const e of g.edges()) edges.append(drawEdge(g.edge(e)));
  graphBox.replaceChildren(root);
}

function drawCluster(id, data) {
  const group = svg("g", { class: `g-cluster st-${data.node.status}`, "data-state": id });
  group.append(svg("rect", { x: data.x - data.width / 2, y: data.y - data.height / 2, width: data.width, height: data.height }));
  return group;
}

function drawNode(id, data) {
  const node = data.node;
  const x = data.x - data.width / 2;
  const y = data.y - data.height / 2;
  const group = svg("g", { class: `g-node st-${node.status}`, "data-state": node.id, "data-status": node.status, tabindex: 0 });
  if (data.role === "out") {
    group.append(svg("rect", { x, y, width: data.width, height: data.height, rx: 7 }));
    return group;
  }
  group.append(svg("rect", { x, y, width: data.width, height: data.height, rx: node.kind === "terminal" ? 14 : 6 }));
  const title = svg("title", {}, `${node.name} (${node.type}): ${node.status.replace("_", " ")}${node.detail ? " · " + node.detail : ""}`);
  group.append(title);
  if (node.kind === "terminal") {
    group.append(svg("text", { x: data.x, y: data.y + 4, "text-anchor": "middle" }, node.name));
  } else {
    group.append(svg("text", { x: data.x, y: data.y - 2, "text-anchor": "middle" }, node.name));
    const type = node.group ? `${node.type} ▾` : node.type;
    group.append(svg("text", { x: data.x, y: data.y + 12, "text-anchor": "middle", class: "type" }, type));
  }
  if (node.kind === "state") {
    group.addEventListener("click", () => showState(node.id));
    group.addEventListener("keydown", (event) => { if (event.key === "Enter") showState(node.id); });
  }
  return group;
}

function drawEdge(data) {
  const points = data.points || [];
  const kind = data.edge.kind;
  const group = svg("g", { class: `g-edge ${kind}` });
  const d = points.map((p, i) => `${i ? "L" : "M"} ${p.x.toFixed(1)} ${p.y.toFixed(1)}`).join(" ");
  group.append(svg("path", { d, "marker-end": "url(#arrow)" }));
  if (data.label) {
    const label = svg("g", { class: `g-edge-label ${kind}` });
    label.append(svg("rect", { x: data.x - data.width / 2, y: data.y - 8, width: data.width, height: 14, rx: 3 }));
    label.append(svg("text", { x: data.x, y: data.y + 3, "text-anchor": "middle" }, data.label));
    group.append(label);
  }
  return group;
}

function recolour(model) {
  for (const node of model.nodes) {
    for (const element of graphBox.querySelectorAll(`[data-state="${CSS.escape(node.id)}"]`)) {
      const base = element.classList.contains("g-cluster") ? "g-cluster" : "g-node";
      element.setAttribute("class", `${base} st-${node.status}${node.id === selectedState ? " selected" : ""}`);
      element.dataset.status = node.status;
    }
  }
}

function showState(id) {
  selectedState = id;
  recolour(graphModel);
  const node = graphModel.nodes.find((n) => n.id === id);
  const box = document.getElementById("state-detail");
  if (!node) { box.hidden = true; return; }
  box.hidden = false;
  document.getElementById("state-title").textContent = `${node.name} · ${node.type}`;
  const body = document.getElementById("state-body");
  const parts = [el("p", { class: `state-status st-${node.status}` }, `Status: ${node.status.replace("_", " ")}`)];
  if (node.comment) parts.push(el("p", { class: "muted" }, node.comment));
  if (node.detail) parts.push(el("p", { class: "muted" }, node.detail));
  if (!node.visits.length) parts.push(el("p", { class: "muted" }, "Not entered in this execution."));
  node.visits.slice(-5).forEach((visit, index, shown) => {
    const number = node.visit_count - shown.length + index + 1;
    const took = visit.exited_at ? ` · ${(visit.exited_at - visit.entered_at).toFixed(1)} s` : "";
    parts.push(el("h4", {}, `Visit ${number}: ${when(visit.entered_at)}${took}${visit.retries ? ` · ${visit.retries} retr${visit.retries === 1 ? "y" : "ies"}` : ""}`));
    for (const failure of visit.failures) {
      parts.push(el("p", { class: "failure" }, `${failure.type}: ${failure.error || "(no error name)"}`));
      if (failure.cause) parts.push(el("pre", {}, failure.cause));
    }
    parts.push(el("strong", {}, "Input"), el("pre", {}, pretty(visit.input)));
    if (visit.output !== null) parts.push(el("strong", {}, "Output"), el("pre", {}, pretty(visit.output)));
  });
  if (node.visit_count > 5) parts.push(el("p", { class: "muted" }, `${node.visit_count - 5} earlier visits not shown.`));
  body.replaceChildren(...parts);
}

function pretty(text) {
  if (text === null || text === undefined) return "–";
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}

function drawHistory(rows, cut) {
  const body = document.getElementById("history-rows");
  const fragment = document.createDocumentFragment();
  for (const row of rows) {
    const tr = el("tr", { class: /Failed|TimedOut|Aborted/.test(row.type) ? "failed-event" : "" });
    tr.append(el("td", {}, row.id), el("td", { class: "when" }, when(row.timestamp)), el("td", {}, row.type));
    tr.append(el("td", {}, row.state || ""), el("td", {}, row.detail));
    fragment.append(tr);
  }
  body.replaceChildren(fragment);
  document.getElementById("history-note").textContent = cut ? "(the newest events; older ones are cut)" : `(${rows.length})`;
}

let lastHistory = "";
async function refreshGraph() {
  const response = await fetch(graphBox.dataset.graphUrl);
  if (!response.ok) return;
  const data = await response.json();
  if (!data.graph) {
    const note = el("p", { class: "muted" }, data.error ? `Step Functions did not answer: ${data.error}` : "No execution yet.");
    graphBox.replaceChildren(note);
    return;
  }
  graphModel = data.graph;
  const shape = JSON.stringify(graphModel.nodes.map((n) => n.id)) + JSON.stringify(graphModel.edges);
  if (shape !== graphShape || !graphBox.querySelector("svg")) {
    graphShape = shape;
    drawGraph(graphModel);
  }
  recolour(graphModel);
  if (selectedState) showState(selectedState);
  const historyKey = `${data.history.length}:${data.history.length ? data.history[data.history.length - 1].id : 0}`;
  if (historyKey !== lastHistory) {
    lastHistory = historyKey;
    drawHistory(data.history, data.history_cut);
  }
}

// --- the live log -----------------------------------------------------------------------------------------

const logView = document.getElementById("log-view");
const logPre = document.getElementById("log");
const follow = document.getElementById("log-follow");
const ansi = new AnsiUp();
ansi.escape_html = true;
let log = null; // {step, cursor, finished, timer, shown, dropped, generation}

function stepUrl(template, step) {
  return template.replace("STEP", step.split("/").map(encodeURIComponent).join("/"));
}

function openLog(step) {
  if (log && log.timer) clearTimeout(log.timer);
  log = { step, cursor: "0", finished: false, timer: null, shown: 0, dropped: 0, generation: (log ? log.generation : 0) + 1 };
  logPre.replaceChildren();
  document.getElementById("log-title").textContent = `· ${step}`;
  const raw = document.getElementById("log-raw");
  raw.href = stepUrl(logView.dataset.rawUrl, step);
  raw.hidden = false;
  document.getElementById("log-dropped").hidden = true;
  markSelectedStep();
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

function appendLines(lines) {
  const fragment = document.createDocumentFragment();
  for (const line of lines) {
    const span = el("span", { class: "line" });
    if (line.startsWith("[stepline]") && line.includes("were cut")) {
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
      if (data.lines.length) appendLines(data.lines);
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

function markSelectedStep() {
  for (const row of panel.querySelectorAll("tr.step")) row.classList.toggle("selected", !!log && row.dataset.step === log.step);
}

function defaultStep() {
  const rows = [...panel.querySelectorAll("tr.step")].filter((row) => row.querySelector(".show-log"));
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
  if (!log) { const step = defaultStep(); if (step) openLog(step); }
  else if (log.finished && isActive()) {
    // a retried step writes a new attempt: follow the latest
    const row = panel.querySelector(`tr.step[data-step="${CSS.escape(log.step)}"]`);
    if (row && row.dataset.finished === "false") openLog(log.step);
  }
  if (wasActive || isActive()) setTimeout(tick, POLL_MS); // one more refresh after the run ends shows its end
}

tick();
