// The run page's execution graph: dagre (vendored, a global) lays it out, SVG draws it, live colours follow
// each state's status; clicking a state shows its visits (input, output, errors, retries). Also the history table.
import { el, svg, when } from "./dom.js";

const GRAPH_MAX_HEIGHT = 700;
const graphBox = document.getElementById("graph");

let graphModel = null;
let graphShape = "";
let selectedState = null;

function nodeSize(node) {
  const label = Math.max(node.name.length, node.type.length + 2);
  return { width: Math.min(260, Math.max(90, label * 7.2 + 24)), height: node.kind === "terminal" ? 28 : 40 };
}

function layoutGraph(model) {
  const g = new dagre.graphlib.Graph({ compound: true });
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
  for (const { source, target, kind, parts } of mergedEdges(model.edges, groups)) {
    const label = parts.map((part) => part.text).join(LABEL_JOIN);
    g.setEdge(source, target, { source, target, kind, parts, label, width: label ? label.length * 5.6 + 8 : 0, height: label ? 14 : 0, labelpos: "c" });
  }
  dagre.layout(g);
  return g;
}

const LABEL_JOIN = " · ";

// One drawn edge per pair of states: a state with a Next and a Catch (or a Choice rule and its Default) to
// the same state would otherwise be two parallel edges, which dagre routes as a detour around the nodes.
function mergedEdges(edges, groups) {
  const pairs = new Map();
  for (const edge of edges) {
    const source = groups.has(edge.source) ? edge.source + (edge.kind === "group_start" ? "::in" : "::out") : edge.source;
    const target = groups.has(edge.target) ? edge.target + (edge.kind === "group_end" ? "::out" : "::in") : edge.target;
    const key = JSON.stringify([source, target]);
    if (!pairs.has(key)) pairs.set(key, { source, target, edges: [] });
    pairs.get(key).edges.push(edge);
  }
  return [...pairs.values()].map(({ source, target, edges: same }) => {
    // the path is drawn as the normal flow when there is one: a Catch is only one of the ways along it
    const kind = (same.find((edge) => edge.kind !== "catch") || same[0]).kind;
    const words = (edge) => edge.label || (same.length > 1 && edge.kind === "next" ? "Next" : "");
    const parts = same.filter(words).map((edge) => ({ kind: edge.kind, text: words(edge) }));
    return { source, target, kind, parts };
  });
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
  const kind = data.kind;
  const group = svg("g", { class: `g-edge ${kind}`, "data-source": data.source, "data-target": data.target });
  const d = points.map((p, i) => `${i ? "L" : "M"} ${p.x.toFixed(1)} ${p.y.toFixed(1)}`).join(" ");
  group.append(svg("path", { d, "marker-end": "url(#arrow)" }));
  if (data.label) {
    const label = svg("g", { class: `g-edge-label ${kind}` });
    label.append(svg("rect", { x: data.x - data.width / 2, y: data.y - 8, width: data.width, height: 14, rx: 3 }));
    const text = svg("text", { x: data.x, y: data.y + 3, "text-anchor": "middle" });
    data.parts.forEach((part, index) => {
      if (index) text.append(LABEL_JOIN);
      text.append(svg("tspan", { class: part.kind }, part.text)); // each part in its own kind's colour
    });
    label.append(text);
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
export async function refreshGraph() {
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
