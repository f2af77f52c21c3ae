// edgecd console: the resource tree as a graph (owner → children, left to right, like Argo CD's), drawn as SVG without libraries.

import { el, natural } from "../ui.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 204;
const H = 58;
const COL_GAP = 44;
const ROW_GAP = 14;
const PAD = 10;

const HEALTH_ICON = { Healthy: "♥", Progressing: "◔", Degraded: "✖", Suspended: "❚❚", Missing: "?", Unknown: "?" };
const SYNC_ICON = { Synced: "✔", OutOfSync: "↻", Unknown: "?" };

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.setAttribute("class", v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false || c === "") continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const clip = (text, n) => (text.length > n ? text.slice(0, n - 1) + "…" : text);

/**
 * The graph of `nodes` (the tree API's flat nodes with `uid` and `parent`):
 * a root box for the application, its managed resources, their children.
 * `keyOf(node)` names a node; `onSelect(key)` is called on click or Enter.
 */
export function graph(nodes, { root, selected, keyOf, onSelect }) {
  const known = new Set(nodes.map((n) => n.uid).filter(Boolean));
  const children = new Map();
  for (const n of nodes) {
    const parent = n.parent && known.has(n.parent) ? n.parent : "";
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(n);
  }
  for (const list of children.values()) list.sort((a, b) => natural(a.kind, b.kind) || natural(a.name, b.name));

  // Layout: depth is the column; leaves take the next row, a parent sits at the middle of its children.
  const placed = [];
  const edges = [];
  let row = 0;
  let depthMax = 0;
  const seen = new Set();
  const place = (node, depth, parentPlace) => {
    depthMax = Math.max(depthMax, depth);
    const kids = node.uid && !seen.has(node.uid) ? (seen.add(node.uid), children.get(node.uid) || []) : [];
    const me = { node, depth, y: 0 };
    placed.push(me);
    if (parentPlace) edges.push([parentPlace, me]);
    if (!kids.length) { me.y = row++; return me; }
    const ys = kids.map((k) => place(k, depth + 1, me).y);
    me.y = (ys[0] + ys[ys.length - 1]) / 2;
    return me;
  };
  const top = { node: { kind: "Application", name: root, uid: "" }, depth: 0, y: 0, root: true };
  placed.push(top);
  const tops = children.get("") || [];
  const ys = tops.map((n) => place(n, 1, top).y);
  top.y = ys.length ? (ys[0] + ys[ys.length - 1]) / 2 : 0;
  row = Math.max(row, 1);

  const x = (p) => PAD + p.depth * (W + COL_GAP);
  const y = (p) => PAD + p.y * (H + ROW_GAP);
  const width = PAD * 2 + (depthMax + 1) * W + depthMax * COL_GAP;
  const height = PAD * 2 + row * H + (row - 1) * ROW_GAP;

  const paths = edges.map(([a, b]) => {
    const x1 = x(a) + W;
    const y1 = y(a) + H / 2;
    const x2 = x(b);
    const y2 = y(b) + H / 2;
    const mid = (x1 + x2) / 2;
    return svg("path", { class: "edge", d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}` });
  });

  const boxes = placed.map((p) => {
    const n = p.node;
    const key = p.root ? "" : keyOf(n);
    const info = n.info || {};
    const detail = [info.replicas ? `replicas ${info.replicas}` : "", info.phase || "", info.images ? info.images.split(",")[0] : ""]
      .filter(Boolean).join(" · ");
    const health = n.health || "";
    const cls = ["gnode", p.root ? "groot" : "", health ? "h-" + health : "", !p.root && key === selected ? "selected" : ""].filter(Boolean).join(" ");
    const choose = () => { if (!p.root) onSelect(key); };
    return svg("g", {
      class: cls, transform: `translate(${x(p)},${y(p)})`,
      tabindex: p.root ? null : "0", role: p.root ? null : "button",
      "aria-label": `${n.kind} ${n.name}${health ? ", " + health : ""}${n.sync ? ", " + n.sync : ""}`,
      dataset: p.root ? { root: "true" } : { key, kind: n.kind, name: n.name, health, sync: n.sync || "" },
      onclick: choose,
      onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); choose(); } },
    },
    svg("title", {}, `${n.kind} ${n.namespace ? n.namespace + "/" : ""}${n.name}${n.healthMessage ? "\n" + n.healthMessage : ""}`),
    svg("rect", { class: "box", width: W, height: H, rx: 6, ry: 6 }),
    svg("rect", { class: "stripe", width: 5, height: H, rx: 2, ry: 2 }),
    svg("text", { class: "gkind", x: 14, y: 16 }, n.kind),
    svg("text", { class: "gname", x: 14, y: 33 }, clip(n.name, 25)),
    detail ? svg("text", { class: "gdetail", x: 14, y: 49 }, clip(detail, 30)) : "",
    health ? svg("text", { class: "gicon health", x: W - 10, y: 17, "text-anchor": "end" }, HEALTH_ICON[health] || "?") : "",
    n.sync ? svg("text", { class: "gicon sync s-" + n.sync, x: W - 28, y: 17, "text-anchor": "end" }, SYNC_ICON[n.sync] || "?") : "");
  });

  const picture = svg("svg", { class: "graph", width, height, viewBox: `0 0 ${width} ${height}`, role: "group", "aria-label": "Resource graph" },
    paths, boxes);
  return el("div", { class: "panel graph-wrap", id: "resource-graph" }, picture);
}
