// edgecd console: DOM helpers, status badges (icon + text), times, toasts and keyboard-navigable tables.

/** Create an element: el("a", {href: "#"}, "text", child, ...). */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, String(v));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const HEALTH = {
  Healthy: ["b-ok", "♥"],
  Progressing: ["b-info", "◔"],
  Degraded: ["b-bad", "✖"],
  Suspended: ["b-neutral", "❚❚"],
  Missing: ["b-warn", "?"],
  Unknown: ["b-neutral", "?"],
};
const SYNC = {
  Synced: ["b-ok", "✔"],
  OutOfSync: ["b-warn", "↻"],
  Unknown: ["b-neutral", "?"],
};
const CONNECTION = {
  Connected: ["b-ok", "●"],
  Stale: ["b-warn", "◌"],
  Disconnected: ["b-bad", "○"],
  Pending: ["b-neutral", "…"],
  Revoked: ["b-bad", "⊘"],
  Unregistered: ["b-neutral", "?"],
};
const PHASE = {
  Succeeded: ["b-ok", "✔"],
  Running: ["b-info", "◔"],
  Terminating: ["b-warn", "◔"],
  Failed: ["b-bad", "✖"],
  Error: ["b-bad", "✖"],
  Terminated: ["b-neutral", "■"],
};

function badge(map, value, title) {
  const [cls, icon] = map[value] || ["b-neutral", "?"];
  return el("span", { class: "badge " + cls, title: title || value, dataset: { status: value || "Unknown" } },
    el("span", { class: "i", "aria-hidden": "true" }, icon), value || "Unknown");
}

export const healthBadge = (h, title) => badge(HEALTH, h || "Unknown", title);

/**
 * The health the hub counts an app by (invariant 5): its last report while its cluster is connected,
 * Unknown while the cluster is pending, stale, disconnected or revoked, with the last report beside it.
 */
export function shownHealthBadge(a) {
  if (!a.connection || a.connection === "Connected" || a.connection === "Unregistered") return healthBadge(a.health);
  const last = a.health || "Unknown";
  return el("span", { class: "shown-health" },
    healthBadge("Unknown", `the cluster is ${a.connection}: last reported ${last}`),
    el("span", { class: "muted" }, ` (last: ${last})`));
}
export const syncBadge = (s, title) => badge(SYNC, s || "Unknown", title);
export const connectionBadge = (c, title) => badge(CONNECTION, c || "Unregistered", title);
export const phaseBadge = (p) => (p ? badge(PHASE, p) : "");

/** "3m ago" style relative time, with the absolute time as a tooltip. */
export function ago(iso) {
  if (!iso) return el("span", { class: "muted" }, "—");
  const t = new Date(iso);
  const s = Math.max(0, Math.round((Date.now() - t.getTime()) / 1000));
  let text;
  if (s < 60) text = `${s}s ago`;
  else if (s < 3600) text = `${Math.floor(s / 60)}m ago`;
  else if (s < 86400) text = `${Math.floor(s / 3600)}h ago`;
  else text = `${Math.floor(s / 86400)}d ago`;
  return el("time", { datetime: iso, title: t.toLocaleString() }, text);
}

export const shortRev = (r) => (r ? r.slice(0, 8) : "");

export function labels(obj) {
  const entries = Object.entries(obj || {});
  if (!entries.length) return el("span", { class: "muted" }, "—");
  return entries.map(([k, v]) => el("code", { class: "badge b-neutral label" }, `${k}=${v}`));
}

export function toast(text) {
  let box = document.getElementById("toast");
  if (!box) { box = el("div", { id: "toast", role: "status" }); document.body.append(box); }
  const item = el("div", {}, text);
  box.append(item);
  setTimeout(() => item.remove(), 5000);
}

export function errorBox(err) {
  return el("div", { class: "error", role: "alert" }, err && err.message ? err.message : String(err));
}

/**
 * Keyboard navigation for a table body: j/k or arrows move the selection,
 * Enter opens the selected row's link.
 */
export function keyboardRows(tbody) {
  tbody.addEventListener("keydown", (e) => {
    const rows = [...tbody.querySelectorAll("tr[tabindex]")];
    const i = rows.indexOf(document.activeElement);
    if (i < 0) return;
    let next = null;
    if (e.key === "ArrowDown" || e.key === "j") next = rows[i + 1];
    else if (e.key === "ArrowUp" || e.key === "k") next = rows[i - 1];
    else if (e.key === "Enter") {
      const link = rows[i].querySelector("a");
      if (link) { link.click(); e.preventDefault(); }
      return;
    }
    if (next) { next.focus(); e.preventDefault(); }
  });
}
