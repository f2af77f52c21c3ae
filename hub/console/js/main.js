// edgecd console: boot, hash router, navigation shell (always-visible sidebar), keyboard shortcuts and theme switch.

import { api, Live, ApiError } from "./api.js";
import { el, toast, setTraceUrlTemplate } from "./ui.js";
import * as login from "./views/login.js";
import * as overview from "./views/overview.js";
import * as apps from "./views/apps.js";
import * as app from "./views/app.js";
import * as clusters from "./views/clusters.js";
import * as cluster from "./views/cluster.js";
import * as projects from "./views/projects.js";
import * as appsets from "./views/appsets.js";
import * as events from "./views/events.js";
import * as deployments from "./views/deployments.js";
import * as notFound from "./views/notfound.js";

const routes = [
  [/^\/login$/, login, "login"],
  [/^\/?$/, overview, "overview"],
  [/^\/overview$/, overview, "overview"],
  [/^\/apps$/, apps, "apps"],
  [/^\/apps\/([^/]+)\/([^/]+)(?:\/([a-z]+))?$/, app, "apps"],
  [/^\/clusters$/, clusters, "clusters"],
  [/^\/clusters\/([^/]+)$/, cluster, "clusters"],
  [/^\/projects$/, projects, "projects"],
  [/^\/appsets$/, appsets, "appsets"],
  [/^\/appsets\/([^/]+)\/([^/]+)$/, appsets, "appsets"],
  [/^\/events$/, events, "events"],
  [/^\/deployments$/, deployments, "deployments"],
];

const state = { me: null, live: new Live(), cleanup: null, seq: 0, routed: null };

/** Parse "#/path?query" into {path, query: URLSearchParams}. */
function location() {
  const hash = window.location.hash.replace(/^#/, "") || "/";
  const [path, qs] = hash.split("?", 2);
  return { path, query: new URLSearchParams(qs || "") };
}

/** Navigate to a hash path with a query object (filters live in the URL). */
export function navigate(path, params, replace) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") q.set(k, v);
  }
  const s = q.toString();
  const hash = "#" + path + (s ? "?" + s : "");
  if (replace) history.replaceState(null, "", hash); else history.pushState(null, "", hash);
  route();
}

function toggleTheme() {
  const root = document.documentElement;
  const dark = root.dataset.theme
    ? root.dataset.theme === "dark"
    : window.matchMedia("(prefers-color-scheme: dark)").matches;
  root.dataset.theme = dark ? "light" : "dark";
  localStorage.setItem("edgecd.theme", root.dataset.theme);
}

function shell(active) {
  const link = (href, text, key) =>
    el("a", { href, class: active === key ? "active" : "", "aria-current": active === key ? "page" : null }, text);
  const liveDot = el("span", { class: "live" + (state.live.connected ? " on" : ""), id: "live" },
    state.live.connected ? "live" : "offline");
  state.live.onState = (on) => {
    liveDot.className = "live" + (on ? " on" : "");
    liveDot.textContent = on ? "live" : "reconnecting";
  };
  const me = state.me;
  // Find an app from any page: opens the application list searched by name.
  const find = el("input", { type: "search", id: "nav-search", name: "find", placeholder: "Find app…  ( / )", "aria-label": "Find an application by name" });
  const findForm = el("form", { class: "nav-find", role: "search", onsubmit: (e) => {
    e.preventDefault();
    navigate("/apps", { search: find.value.trim() });
  } }, find);
  const nav = el("nav", { class: "nav", "aria-label": "Main" },
    el("div", { class: "brand" }, "edge", el("span", {}, "cd")),
    findForm,
    link("#/overview", "Overview", "overview"),
    link("#/apps", "Applications", "apps"),
    link("#/clusters", "Clusters", "clusters"),
    link("#/projects", "Projects", "projects"),
    link("#/appsets", "Application sets", "appsets"),
    link("#/deployments", "Deployments", "deployments"),
    link("#/events", "Events", "events"),
    el("div", { class: "spacer" }),
    el("div", { class: "me", id: "nav-controls" },
      el("div", {}, liveDot),
      el("div", {}, "Signed in as ", el("strong", { id: "whoami" }, me.subject), me.admin ? " (admin)" : ""),
      el("div", {},
        el("button", { type: "button", id: "theme-button", onclick: toggleTheme, title: "Switch light/dark theme" }, "Theme"), " ",
        me.authEnabled
          ? el("button", { type: "button", id: "sign-out", onclick: logout }, "Sign out")
          : null)));
  const main = el("main", { class: "main", id: "main", tabindex: "-1" });
  return { node: el("div", { class: "shell" }, nav, main), main };
}

async function logout() {
  try { await api.logout(); } catch (e) { /* the session may already be gone */ }
  state.me = null;
  state.live.stop();
  navigate("/login");
}

/**
 * Render the view of the current URL. Back/Forward fire both `popstate` and
 * `hashchange`: the second call for the same URL is skipped, and a render
 * overtaken by a newer navigation is discarded (its cleanup runs at once).
 */
async function route() {
  const seq = ++state.seq;
  state.routed = window.location.hash;
  if (state.cleanup) { try { state.cleanup(); } catch (e) { /* ignore */ } state.cleanup = null; }
  const loc = location();
  const root = document.getElementById("app");
  if (!state.me && loc.path !== "/login") {
    try {
      state.me = await api.whoami();
      setTraceUrlTemplate(state.me.traceUrlTemplate);
    } catch (e) {
      if (seq !== state.seq) return;
      if (e instanceof ApiError && e.status === 401) {
        navigate("/login", { next: window.location.hash.replace(/^#/, "") }, true);
        return;
      }
      root.replaceChildren(el("div", { class: "error", role: "alert" }, "Cannot reach the hub: " + e.message));
      return;
    }
    if (seq !== state.seq) return;
  }
  let view = notFound;
  let key = "";
  let params = [loc.path];
  for (const [re, v, k] of routes) {
    const m = loc.path.match(re);
    if (!m) continue;
    view = v;
    key = k;
    params = m.slice(1).map((s) => (s === undefined ? undefined : decodeURIComponent(s)));
    break;
  }
  const keep = (cleanup) => {
    if (seq === state.seq) state.cleanup = cleanup;
    else if (typeof cleanup === "function") { try { cleanup(); } catch (e) { /* ignore */ } }
  };
  if (key === "login") {
    root.replaceChildren();
    keep(await view.render({ root, query: loc.query, onLogin }));
    return;
  }
  state.live.start();
  const { node, main } = shell(key);
  root.replaceChildren(node);
  const ctx = { root: main, params, query: loc.query, me: state.me, live: state.live, navigate, toast };
  try {
    keep(await view.render(ctx));
  } catch (e) {
    if (seq !== state.seq) return;
    if (e instanceof ApiError && e.status === 401) { state.me = null; navigate("/login", {}, true); return; }
    main.append(el("div", { class: "error", role: "alert" }, e.message || String(e)));
  }
}

async function onLogin(next) {
  state.me = await api.whoami();
  setTraceUrlTemplate(state.me.traceUrlTemplate);
  history.replaceState(null, "", "#" + (next && next !== "/login" ? next : "/overview"));
  route();
}

window.addEventListener("popstate", route);
window.addEventListener("hashchange", () => { if (window.location.hash !== state.routed) route(); });

/** Whether a key typed at `target` is text (an input that takes text, a textarea, a select, an editable element). */
function typingInto(target) {
  if (!target || !target.tagName) return false;
  if (target.isContentEditable || target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
  if (target.tagName !== "INPUT") return false;
  return !["checkbox", "radio", "button", "submit", "reset", "range", "color", "file"].includes(target.type);
}

document.addEventListener("keydown", (e) => {
  // "/" focuses the page's search box (the filter bar's, else the sidebar's
  // "Find app"), like most tools; typed in a text field it is just a "/".
  if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
  if (typingInto(e.target) || document.querySelector("dialog[open]")) return;
  const search = document.querySelector("#main input[type=search]") || document.getElementById("nav-search");
  if (search) { search.focus(); search.select(); e.preventDefault(); }
});
route();
