// edgecd console: the JSON client of the hub's /api/v1 face and the live-update stream (SSE).

/** An API error: HTTP status plus the hub's message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// A W3C traceparent for one operator action: a fresh trace, sampled, so the hub and the spokes record what
// the action sets off under one trace id (docs/observability.md).
function traceparent() {
  const hex = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(16).padStart(2, "0")).join("");
  return `00-${hex(16)}-${hex(8)}-01`;
}

async function request(method, path, body) {
  const init = {
    method,
    credentials: "same-origin",
    headers: { "Accept": "application/json" },
  };
  if (method !== "GET") {
    // The hub refuses state-changing calls without this header: a plain
    // cross-site form or fetch cannot send it (CSRF protection).
    init.headers["X-Edgecd-Csrf"] = "1";
    init.headers["traceparent"] = traceparent();
  }
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, "unreachable", "the hub is unreachable");
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch (e) { data = { message: text }; }
  }
  if (!response.ok) {
    const message = (data && data.message) || response.statusText;
    throw new ApiError(response.status, data && data.code, message);
  }
  return data;
}

/** Turn a filter object into a query string, skipping empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === "") continue;
    if (Array.isArray(v)) { if (v.length) q.set(k, v.join(",")); } else q.set(k, String(v));
  }
  const s = q.toString();
  return s ? "?" + s : "";
}

const seg = encodeURIComponent;

function resourceQuery(key) {
  if (!key) return {};
  return { group: key.group || "", kind: key.kind, namespace: key.namespace || "", name: key.name };
}

/** Reuse a slow-changing answer (filter choices) for a few seconds. */
const memo = new Map();
function cached(key, ttlMs, load) {
  const hit = memo.get(key);
  if (hit && Date.now() - hit.at < ttlMs) return hit.promise;
  const promise = load();
  memo.set(key, { at: Date.now(), promise });
  promise.catch(() => memo.delete(key));
  return promise;
}

export const api = {
  whoami: () => request("GET", "/api/v1/whoami"),
  login: (username, password) => request("POST", "/api/v1/login", { username, password }),
  logout: () => request("POST", "/api/v1/logout", {}),
  apps: (filter) => request("GET", "/api/v1/apps" + query(filter)),
  counts: (filter) => request("GET", "/api/v1/counts" + query(filter)),
  app: (p, n) => request("GET", `/api/v1/apps/${seg(p)}/${seg(n)}`),
  tree: (p, n) => request("GET", `/api/v1/apps/${seg(p)}/${seg(n)}/tree`),
  /** The app's diff; with a resource key ({group, kind, namespace, name}) only that resource's, changed or not. */
  diff: (p, n, key) => request("GET", `/api/v1/apps/${seg(p)}/${seg(n)}/diff` + query(resourceQuery(key))),
  /** The desired manifests rendered from git; with a resource key only that resource's. */
  manifests: (p, n, key) => request("GET", `/api/v1/apps/${seg(p)}/${seg(n)}/manifests` + query(resourceQuery(key))),
  appEvents: (p, n) => request("GET", `/api/v1/apps/${seg(p)}/${seg(n)}/events`),
  /** A resource's live manifest, read from its cluster now through the app's spoke: {yaml}. */
  liveManifest: (p, n, key) => request("GET", `/api/v1/apps/${seg(p)}/${seg(n)}/live` + query({ ...resourceQuery(key), version: key.version || "" })),
  /** The logs of a pod or of a workload's pods (opts: container, tail, previous): {items: [{pod, container, text}]}. */
  logs: (p, n, key, opts) => request("GET", `/api/v1/apps/${seg(p)}/${seg(n)}/logs` + query({ ...resourceQuery(key), ...opts })),
  /** The URL of a log follow (server-sent `log` events, then `end` if it ends early). */
  logsFollowUrl: (p, n, key, opts) => `/api/v1/apps/${seg(p)}/${seg(n)}/logs` + query({ ...resourceQuery(key), ...opts, follow: "true" }),
  /** The WebSocket URL of a terminal in a pod of the app (opts: container, command, cols, rows). */
  execUrl: (p, n, key, opts) => `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/api/v1/apps/${seg(p)}/${seg(n)}/exec` + query({ ...resourceQuery(key), ...opts }),
  command: (p, n, kind, body) => request("POST", `/api/v1/apps/${seg(p)}/${seg(n)}/${kind}`, body || {}),
  deleteApp: (p, n, cascade) => request("DELETE", `/api/v1/apps/${seg(p)}/${seg(n)}` + query({ cascade: cascade ? "true" : "false" })),
  getCommand: (id) => request("GET", `/api/v1/commands/${seg(id)}`),
  /** One command for the listed apps ([{project, name}]): {kind: "sync"|"refresh", apps, ...options}. */
  bulk: (body) => request("POST", "/api/v1/bulk", body),
  clusters: (selector) => request("GET", "/api/v1/clusters" + query({ selector })),
  clusterChoices: () => cached("clusters", 30000, () => request("GET", "/api/v1/clusters")),
  projectChoices: () => cached("projects", 30000, () => request("GET", "/api/v1/projects")),
  cluster: (name) => request("GET", `/api/v1/clusters/${seg(name)}`),
  projects: () => request("GET", "/api/v1/projects"),
  appsets: () => request("GET", "/api/v1/appsets"),
  appset: (p, n) => request("GET", `/api/v1/appsets/${seg(p)}/${seg(n)}`),
  events: (filter) => request("GET", "/api/v1/events" + query(filter)),
  /** The fleet's deployment record, newest first: {items, next} (next: the following page's token). */
  deployments: (filter) => request("GET", "/api/v1/deployments" + query(filter)),
};

/**
 * Live updates: one EventSource on /api/v1/watch, fanned out to listeners.
 * The browser reconnects by itself and sends Last-Event-ID, which the hub
 * uses as the resume token. While the page is hidden or put in the
 * back-forward cache the stream is closed (browsers allow only six HTTP/1.1
 * connections per host, and idle tabs must not hold them); it is reopened
 * from the last event seen, so nothing is missed.
 */
export class Live {
  constructor() {
    this.listeners = new Set();
    this.source = null;
    this.connected = false;
    this.lastId = "";
    this.wanted = false;
    this.onState = () => {};
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) this.close(); else if (this.wanted) this.open();
    });
    window.addEventListener("pagehide", () => this.close());
    window.addEventListener("pageshow", () => { if (this.wanted && !document.hidden) this.open(); });
  }
  start() {
    this.wanted = true;
    if (!document.hidden) this.open();
  }
  open() {
    if (this.source) return;
    const url = "/api/v1/watch" + (this.lastId ? "?resume=" + encodeURIComponent(this.lastId) : "");
    const source = new EventSource(url);
    this.source = source;
    source.onopen = () => { this.connected = true; this.onState(true); };
    source.onerror = () => { this.connected = false; this.onState(false); };
    for (const type of ["app", "app-deleted", "cluster", "appset", "appset-deleted"]) {
      source.addEventListener(type, (e) => {
        if (e.lastEventId) this.lastId = e.lastEventId;
        let data;
        try { data = JSON.parse(e.data); } catch (err) { return; }
        for (const l of this.listeners) l(type, data);
      });
    }
  }
  close() {
    if (this.source) this.source.close();
    this.source = null;
    if (this.connected) { this.connected = false; this.onState(false); }
  }
  stop() {
    this.wanted = false;
    this.close();
  }
  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}
