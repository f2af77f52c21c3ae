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

/** A revision shortened to 8 characters; a multi-source app's revisions (joined with ", ") each. */
export const shortRev = (r) => (r ? r.split(", ").map((x) => x.slice(0, 8)).join(", ") : "");

// The hub's --trace-url-template ({trace_id} replaced), from whoami; empty: trace ids are shown, not linked.
let traceUrlTemplate = "";
export function setTraceUrlTemplate(template) {
  traceUrlTemplate = typeof template === "string" && template.includes("{trace_id}") ? template : "";
}

// A trace id (32 hex digits, checked by the hub) shortened, whole in the title, linked to the tracing UI when configured.
export function traceLink(id) {
  if (!id) return "—";
  const text = id.slice(0, 12);
  if (!traceUrlTemplate) return el("span", { class: "mono trace", title: id }, text);
  return el("a", { class: "mono trace", title: id, href: traceUrlTemplate.replaceAll("{trace_id}", id), target: "_blank", rel: "noopener noreferrer" }, text);
}

export function labels(obj) {
  const entries = Object.entries(obj || {});
  if (!entries.length) return el("span", { class: "muted" }, "—");
  return entries.map(([k, v]) => el("code", { class: "badge b-neutral label" }, `${k}=${v}`));
}

/** Natural order for names shown in lists sorted here ("gen-2" before "gen-10"). */
const collator = new Intl.Collator("en", { numeric: true, sensitivity: "variant" });
export const natural = (a, b) => collator.compare(String(a ?? ""), String(b ?? ""));

/** "1 application", "3 applications". */
export const plural = (n, one, many) => `${n} ${n === 1 ? one : many || one + "s"}`;

/**
 * A message in the corner. Returns a handle: `update(text, kind)` changes it
 * in place, `close()` removes it, `done(ms)` removes it after `ms`. Every
 * message can be dismissed; by default it goes after 6 s.
 */
export function toast(text, { sticky = false, kind = "" } = {}) {
  let box = document.getElementById("toast");
  if (!box) { box = el("div", { id: "toast", role: "status", "aria-live": "polite" }); document.body.append(box); }
  const message = el("span", { class: "toast-text" }, text);
  const item = el("div", { class: "toast " + kind });
  let timer = null;
  const handle = {
    node: item,
    update(t, k) { message.textContent = t; if (k !== undefined) item.className = "toast " + k; return handle; },
    close() { clearTimeout(timer); item.remove(); },
    done(ms) { clearTimeout(timer); timer = setTimeout(() => item.remove(), ms ?? 6000); return handle; },
  };
  item.append(message, el("button", { type: "button", class: "toast-close", "aria-label": "Dismiss", onclick: () => handle.close() }, "✕"));
  box.append(item);
  if (!sticky) handle.done();
  return handle;
}

/**
 * A modal dialog (the native <dialog>): `body` is a node or list of nodes,
 * `onConfirm()` may return false (or throw) to keep it open. Resolves with
 * true when confirmed, false when cancelled (Escape, Cancel).
 */
export function dialog({ title, body, confirmText = "OK", danger = false, id, onConfirm, confirmEnabled }) {
  return new Promise((resolve) => {
    const status = el("div", { class: "dialog-status" });
    const confirm = el("button", { type: "submit", class: danger ? "danger-fill" : "primary", id: id ? `${id}-confirm` : null }, confirmText);
    const cancel = el("button", { type: "button", id: id ? `${id}-cancel` : null }, "Cancel");
    const form = el("form", { method: "dialog" },
      el("h2", { class: "first" }, title),
      el("div", { class: "dialog-body" }, body),
      status,
      el("div", { class: "dialog-actions" }, cancel, confirm));
    const node = el("dialog", { class: "modal", id, "aria-label": title }, form);
    let settled = false;
    const finish = (value) => {
      if (settled) return;
      settled = true;
      if (node.open) node.close();
      node.remove();
      resolve(value);
    };
    const refresh = () => { if (confirmEnabled) confirm.disabled = !confirmEnabled(); };
    form.addEventListener("input", refresh);
    form.addEventListener("change", refresh);
    cancel.addEventListener("click", () => finish(false));
    node.addEventListener("cancel", (e) => { e.preventDefault(); finish(false); });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (confirmEnabled && !confirmEnabled()) return;
      confirm.disabled = true;
      try {
        const ok = onConfirm ? await onConfirm() : true;
        if (ok === false) { confirm.disabled = false; return; }
        finish(true);
      } catch (err) {
        status.replaceChildren(errorBox(err));
        confirm.disabled = false;
      }
    });
    document.body.append(node);
    node.showModal();
    refresh();
  });
}

export function errorBox(err) {
  return el("div", { class: "error", role: "alert" }, err && err.message ? err.message : String(err));
}

/** Command outcomes after which nothing more happens. */
const FINAL = new Set(["Succeeded", "Failed", "Expired", "Unsupported", "Rejected"]);

/**
 * Follow a queued command in a toast until it ends: "Sync of default/nginx:
 * Pending — cluster-3 is Stale; …" becomes "… Succeeded" (or Failed, with the
 * spoke's message). `get(id)` reads the command's current status. A command
 * still queued after two minutes says so and the toast goes; it never stays
 * on "Pending" for a command that ended.
 */
export function trackCommand(label, result, get) {
  const line = (r) => `${label}: ${r.state || "Pending"}${r.message ? " — " + r.message : ""}${r.notice ? " (" + r.notice + ")" : ""}`;
  const kindOf = (r) => (r.state === "Succeeded" ? "ok" : FINAL.has(r.state) ? "bad" : r.notice ? "warn" : "");
  const t = toast(line(result), { sticky: true, kind: kindOf(result) });
  t.node.dataset.command = result.id || "";
  t.node.dataset.state = result.state || "";
  if (!result.id || FINAL.has(result.state)) { t.done(8000); return t; }
  const started = Date.now();
  let notice = result.notice || "";
  const poll = async () => {
    if (!t.node.isConnected) return;
    let r;
    try { r = await get(result.id); } catch (e) { r = null; }
    if (r) {
      notice = r.notice || notice;
      const shown = { ...r, notice };
      t.update(line(shown), kindOf(shown));
      t.node.dataset.state = r.state || "";
      if (FINAL.has(r.state)) { t.done(8000); return; }
    }
    const waited = Date.now() - started;
    if (waited > 120000) {
      t.update(`${label}: still queued${notice ? " (" + notice + ")" : ""}; it runs when the spoke takes it, within its time to live`, "warn");
      t.done(10000);
      return;
    }
    setTimeout(poll, waited < 30000 ? 1000 : 5000);
  };
  setTimeout(poll, 700);
  return t;
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
