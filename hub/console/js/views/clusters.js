// edgecd console: the cluster list (connection state with "stale since", labels, versions, app counts), updated live.

import { api } from "../api.js";
import { el, connectionBadge, ago, labels, errorBox, keyboardRows } from "../ui.js";

export function clusterRow(c) {
  const href = `#/clusters/${encodeURIComponent(c.name)}`;
  const since = c.connection !== "Connected" && c.connectionSince;
  return el("tr", { tabindex: "0", dataset: { cluster: c.name, connection: c.connection } },
    el("td", {}, el("a", { href }, c.name)),
    el("td", {}, connectionBadge(c.connection), since ? el("span", { class: "muted" }, " since ", ago(c.connectionSince)) : ""),
    el("td", {}, labels(c.labels)),
    el("td", {}, c.kubernetesVersion || "—"),
    el("td", {}, c.spokeVersion || "—"),
    el("td", {}, el("a", { href: `#/apps?cluster=${encodeURIComponent(c.name)}` }, String(c.appCount ?? "—"))),
    el("td", {}, c.lastHeartbeat ? ago(c.lastHeartbeat) : el("span", { class: "muted" }, "never")));
}

export async function render({ root, live }) {
  const tbody = el("tbody");
  keyboardRows(tbody);
  const status = el("div");
  root.append(el("div", { class: "topline" }, el("h1", {}, "Clusters")), status,
    el("table", { class: "data", id: "clusters-table" },
      el("thead", {}, el("tr", {}, el("th", {}, "Name"), el("th", {}, "Connection"), el("th", {}, "Labels"),
        el("th", {}, "Kubernetes"), el("th", {}, "Spoke"), el("th", {}, "Apps"), el("th", {}, "Last heartbeat"))),
      tbody));
  let data;
  try {
    data = await api.clusters();
  } catch (e) {
    status.replaceChildren(errorBox(e));
    return;
  }
  const rows = new Map();
  for (const c of data.items) { const r = clusterRow(c); rows.set(c.name, { data: c, node: r }); tbody.append(r); }
  if (!data.items.length) status.replaceChildren(el("p", { class: "muted" }, "No clusters yet. Add one with `edgecd cluster add NAME`."));
  return live.subscribe((type, c) => {
    if (type !== "cluster") return;
    const current = rows.get(c.name);
    const merged = { ...(current ? current.data : {}), ...c };
    const fresh = clusterRow(merged);
    if (current) current.node.replaceWith(fresh); else tbody.append(fresh);
    rows.set(c.name, { data: merged, node: fresh });
  });
}
