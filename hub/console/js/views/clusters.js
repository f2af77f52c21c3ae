// edgecd console: the cluster list (connection state with "stale since", labels, versions, app counts), updated live.

import { api } from "../api.js";
import { el, connectionBadge, ago, labels, errorBox, keyboardRows, natural } from "../ui.js";

/** The cluster's app count (linking to its apps), with the out-of-sync and degraded ones when the hub reports them. */
function appCounts(c) {
  const name = encodeURIComponent(c.name);
  const total = el("a", { href: `#/apps?cluster=${name}`, class: "app-count" }, String(c.appCount ?? "—"));
  const n = c.appCounts;
  if (!n) return total;
  return [total,
    n.outOfSync ? [" ", el("a", { href: `#/apps?cluster=${name}&sync=OutOfSync`, class: "badge b-warn", title: "out of sync" }, `${n.outOfSync} out of sync`)] : "",
    n.degraded ? [" ", el("a", { href: `#/apps?cluster=${name}&health=Degraded`, class: "badge b-bad", title: "degraded" }, `${n.degraded} degraded`)] : ""];
}

/** A warning next to a spoke version outside the supported skew (docs/protocol.md#version-skew). */
export function skewBadge(skew) {
  if (!skew || skew.state !== "UNSUPPORTED") return "";
  return [" ", el("span", { class: "badge b-warn skew", title: skew.message }, "unsupported skew")];
}

export function clusterRow(c) {
  const href = `#/clusters/${encodeURIComponent(c.name)}`;
  const since = c.connection !== "Connected" && c.connectionSince;
  return el("tr", { tabindex: "0", dataset: { cluster: c.name, connection: c.connection } },
    el("td", {}, el("a", { href }, c.name)),
    el("td", {}, connectionBadge(c.connection), since ? el("span", { class: "muted" }, " since ", ago(c.connectionSince)) : ""),
    el("td", {}, labels(c.labels)),
    el("td", {}, c.kubernetesVersion || "—"),
    el("td", {}, c.spokeVersion || "—", skewBadge(c.versionSkew)),
    el("td", {}, appCounts(c)),
    el("td", {}, c.lastHeartbeat ? ago(c.lastHeartbeat) : el("span", { class: "muted" }, "never")));
}

export async function render({ root, live, query, navigate }) {
  // `#/clusters?selector=env=dev`: only the clusters matching a label selector (linked from a fleet-scoped set).
  const selector = (query && query.get("selector")) || "";
  const tbody = el("tbody");
  keyboardRows(tbody);
  const status = el("div");
  root.append(el("div", { class: "topline" }, el("h1", {}, "Clusters"),
    selector ? el("span", { class: "field owner-filter", id: "cluster-selector" }, "matching ", el("code", {}, selector),
      el("button", { type: "button", "aria-label": "Show every cluster", onclick: () => navigate("/clusters", {}) }, "✕")) : ""),
  status,
    el("table", { class: "data", id: "clusters-table" },
      el("thead", {}, el("tr", {}, el("th", {}, "Name"), el("th", {}, "Connection"), el("th", {}, "Labels"),
        el("th", {}, "Kubernetes"), el("th", {}, "Spoke"), el("th", {}, "Apps"), el("th", {}, "Last heartbeat"))),
      tbody));
  let data;
  try {
    data = await api.clusters(selector);
  } catch (e) {
    status.replaceChildren(errorBox(e));
    return;
  }
  const rows = new Map();
  // Natural order: cluster-2 before cluster-10.
  const items = data.items.slice().sort((a, b) => natural(a.name, b.name));
  for (const c of items) { const r = clusterRow(c); rows.set(c.name, { data: c, node: r }); tbody.append(r); }
  if (!data.items.length) status.replaceChildren(el("p", { class: "muted" }, "No clusters yet. Add one with `edgecd cluster add NAME`."));
  return live.subscribe((type, c) => {
    if (type !== "cluster") return;
    const current = rows.get(c.name);
    // With a selector the console cannot tell whether a cluster it has not listed matches: it waits for a reload.
    if (!current && selector) return;
    const merged = { ...(current ? current.data : {}), ...c };
    // Live cluster events carry no app counts: keep the listed ones.
    if (current && c.appCount == null) { merged.appCount = current.data.appCount; merged.appCounts = current.data.appCounts; }
    const fresh = clusterRow(merged);
    if (current) current.node.replaceWith(fresh);
    else {
      const after = [...rows.keys()].filter((k) => natural(k, c.name) > 0).sort(natural)[0];
      if (after) tbody.insertBefore(fresh, rows.get(after).node); else tbody.append(fresh);
    }
    rows.set(c.name, { data: merged, node: fresh });
  });
}
