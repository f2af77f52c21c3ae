// edgecd console: the application table (server-side filters kept in the URL, sorting, cursor pages, live row updates).

import { api } from "../api.js";
import { el, healthBadge, syncBadge, connectionBadge, phaseBadge, ago, shortRev, errorBox, keyboardRows } from "../ui.js";

const FILTER_KEYS = ["project", "cluster", "clusterLabel", "label", "health", "sync", "search", "sort", "desc", "origin"];
const HEALTHS = ["", "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"];
const SYNCS = ["", "Synced", "OutOfSync", "Unknown"];
const PAGE = 100;

/** Previous cursors of the current filter, so "Previous" works without history. */
const trail = { key: "", cursors: [] };

export async function render({ root, query, navigate, live }) {
  const filter = {};
  for (const k of FILTER_KEYS) if (query.get(k)) filter[k] = query.get(k);
  const cursor = query.get("cursor") || "";
  const filterKey = JSON.stringify(filter);
  if (trail.key !== filterKey) { trail.key = filterKey; trail.cursors = []; }

  // The page of apps is asked for first; the filter bar's choices (projects,
  // cluster names) load beside it and never delay the table.
  const pageRequest = api.apps({ ...filter, limit: PAGE, cursor });
  const projectChoices = api.projectChoices().catch(() => ({ items: [] }));
  const clusterChoices = api.clusterChoices().catch(() => ({ items: [] }));

  // --- filter bar (applied on change; the URL is the state) ---
  const go = (changes, keepCursor) => {
    window.__edgecdFilterStart = performance.now();
    const next = { ...filter, ...changes };
    if (!keepCursor) delete next.cursor;
    navigate("/apps", next);
  };
  const select = (name, label, options, value) =>
    el("label", { class: "field" }, label,
      el("select", { name, "aria-label": label, onchange: (e) => go({ [name]: e.target.value }) },
        options.map((o) => el("option", { value: o, selected: o === (value || "") }, o || "any"))));
  const search = el("input", {
    type: "search", name: "search", value: filter.search || "", placeholder: "name contains…  ( / )", "aria-label": "Search by name",
  });
  let searchTimer = null;
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => go({ search: search.value }), 250);
  });
  const clusterInput = el("input", { name: "cluster", list: "cluster-names", value: filter.cluster || "", placeholder: "any", "aria-label": "Cluster", size: 14,
    onchange: (e) => go({ cluster: e.target.value.trim() }) });
  const clusterLabel = el("input", { name: "clusterLabel", value: filter.clusterLabel || "", placeholder: "region=eu", "aria-label": "Cluster label selector", size: 14,
    onchange: (e) => go({ clusterLabel: e.target.value.trim() }) });
  const projectSelect = select("project", "Project", ["", ...(filter.project ? [filter.project] : [])], filter.project);
  const clusterList = el("datalist", { id: "cluster-names" });
  projectChoices.then((projects) => {
    const names = projects.items.map((p) => p.name);
    if (filter.project && !names.includes(filter.project)) names.unshift(filter.project);
    projectSelect.querySelector("select").replaceChildren(
      ...["", ...names].map((o) => el("option", { value: o, selected: o === (filter.project || "") }, o || "any")));
  });
  clusterChoices.then((clusters) => clusterList.replaceChildren(...clusters.items.map((c) => el("option", { value: c.name }))));
  const bar = el("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() },
    el("label", { class: "field" }, "Name", search),
    projectSelect,
    el("label", { class: "field" }, "Cluster", clusterInput, clusterList),
    el("label", { class: "field" }, "Cluster labels", clusterLabel),
    select("health", "Health", HEALTHS, filter.health),
    select("sync", "Sync", SYNCS, filter.sync),
    el("button", { type: "button", onclick: () => navigate("/apps", {}) }, "Clear"));

  const status = el("div", { class: "muted", id: "apps-status" }, "Loading…");
  const tbody = el("tbody");
  keyboardRows(tbody);

  const sortKey = filter.sort || "name";
  const desc = filter.desc === "1";
  const th = (key, text) => el("th", { "aria-sort": sortKey === key ? (desc ? "descending" : "ascending") : "none" },
    el("button", { type: "button", class: "sort", onclick: () => go({ sort: key, desc: sortKey === key && !desc ? "1" : "" }) },
      text, sortKey === key ? (desc ? " ▼" : " ▲") : ""));
  const table = el("table", { class: "data", id: "apps-table" },
    el("thead", {}, el("tr", {},
      th("name", "Name"), th("project", "Project"), th("cluster", "Cluster"),
      th("sync", "Sync"), th("health", "Health"), el("th", {}, "Revision"), el("th", {}, "Operation"), th("updated", "Updated"))),
    tbody);
  const pager = el("div", { class: "pager" });
  root.append(el("div", { class: "topline" }, el("h1", {}, "Applications"), el("span", { class: "grow" })), bar, status, table, pager);
  search.focus({ preventScroll: true });
  if (filter.search) search.setSelectionRange(search.value.length, search.value.length);

  const rows = new Map();
  function row(a) {
    const href = `#/apps/${encodeURIComponent(a.project)}/${encodeURIComponent(a.name)}`;
    const stale = a.connection && a.connection !== "Connected";
    return el("tr", { tabindex: "0", dataset: { app: `${a.project}/${a.name}`, health: a.health, sync: a.sync } },
      el("td", {}, el("a", { href }, a.name), a.origin === "Autonomous" ? el("span", { class: "muted", title: "created at the edge; read-only here" }, " (edge)") : ""),
      el("td", {}, a.project),
      el("td", {}, el("a", { href: `#/clusters/${encodeURIComponent(a.cluster)}` }, a.cluster), " ",
        stale ? connectionBadge(a.connection, "cluster is " + a.connection + ": status is the last report") : ""),
      el("td", {}, syncBadge(a.sync)),
      el("td", {}, healthBadge(a.health), stale ? el("span", { class: "muted" }, " (last known)") : ""),
      el("td", { class: "mono" }, shortRev(a.revision)),
      el("td", {}, phaseBadge(a.operationPhase)),
      el("td", {}, ago(a.updatedAt)));
  }

  let page;
  try {
    page = await pageRequest;
  } catch (e) {
    status.replaceChildren(errorBox(e));
    return;
  }
  for (const a of page.items) {
    const node = row(a);
    rows.set(`${a.project}/${a.name}`, { data: a, node });
    tbody.append(node);
  }
  const from = trail.cursors.length * PAGE;
  status.textContent = page.items.length
    ? `${page.total != null ? page.total + " applications, " : ""}showing ${from + 1}–${from + page.items.length}`
    : "No applications match these filters.";
  pager.append(
    el("button", { type: "button", disabled: !trail.cursors.length, onclick: () => {
      const prev = trail.cursors.pop();
      go({ cursor: prev }, true);
    } }, "← Previous"),
    el("button", { type: "button", disabled: !page.nextCursor, id: "next-page", onclick: () => {
      trail.cursors.push(cursor);
      go({ cursor: page.nextCursor }, true);
    } }, "Next →"));
  // For the console benchmark: when the first page of this view was drawn.
  performance.mark("edgecd:apps-rendered");

  // Live: update visible rows in place; never re-query the whole list.
  const unsubscribe = live.subscribe((type, data) => {
    if (type === "app") {
      const key = `${data.project}/${data.name}`;
      const current = rows.get(key);
      if (!current) return;
      const fresh = row(data);
      current.node.replaceWith(fresh);
      rows.set(key, { data, node: fresh });
    } else if (type === "cluster") {
      for (const [key, current] of rows) {
        if (current.data.cluster !== data.name || current.data.connection === data.connection) continue;
        const updated = { ...current.data, connection: data.connection };
        const fresh = row(updated);
        current.node.replaceWith(fresh);
        rows.set(key, { data: updated, node: fresh });
      }
    }
  });
  return unsubscribe;
}
