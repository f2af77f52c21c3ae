// edgecd console: one cluster (connection, versions, labels) and its applications.

import { api } from "../api.js";
import { el, connectionBadge, shownHealthBadge, syncBadge, ago, labels, errorBox, keyboardRows, plural } from "../ui.js";

export async function render({ root, params, live }) {
  const [name] = params;
  const header = el("div");
  const apps = el("div");
  root.append(header, el("h2", {}, "Applications"), apps);

  async function load() {
    try {
      const [c, list] = await Promise.all([api.cluster(name), api.apps({ cluster: name, limit: 100 })]);
      header.replaceChildren(
        el("div", { class: "topline" }, el("h1", {}, "Cluster ", name), el("span", { id: "cluster-connection" }, connectionBadge(c.connection))),
        el("div", { class: "panel" }, el("dl", { class: "kv" },
          el("dt", {}, "Connection"), el("dd", {}, c.connection, c.connectionSince ? [" since ", ago(c.connectionSince)] : ""),
          el("dt", {}, "Hub replica"), el("dd", {}, c.hubReplica || "—"),
          el("dt", {}, "Last heartbeat"), el("dd", {}, ago(c.lastHeartbeat)),
          el("dt", {}, "API server"), el("dd", { class: "mono" }, c.serverUrl || "—"),
          el("dt", {}, "Kubernetes"), el("dd", {}, c.kubernetesVersion || "—"),
          el("dt", {}, "Spoke"), el("dd", { id: "cluster-spoke-version" }, c.spokeVersion || "—",
            c.versionSkew && c.versionSkew.message && c.spokeVersion ? el("span", { class: c.versionSkew.state === "UNSUPPORTED" ? "badge b-warn skew" : "muted" }, " ", c.versionSkew.message) : ""),
          el("dt", {}, "Certificate expires"), el("dd", {}, c.certificateNotAfter ? new Date(c.certificateNotAfter).toLocaleString() : "—"),
          el("dt", {}, "Labels"), el("dd", {}, labels(c.labels)))));
      const tbody = el("tbody");
      keyboardRows(tbody);
      for (const a of list.items) {
        tbody.append(el("tr", { tabindex: "0", dataset: { app: `${a.project}/${a.name}`, sync: a.sync, health: a.health } },
          el("td", {}, el("a", { href: `#/apps/${encodeURIComponent(a.project)}/${encodeURIComponent(a.name)}` }, `${a.project}/${a.name}`)),
          el("td", {}, syncBadge(a.sync)), el("td", {}, shownHealthBadge(a)), el("td", {}, ago(a.updatedAt))));
      }
      // replaceChildren takes nodes, not an array (an array would be written as "[object HTMLTableElement],").
      const total = list.total ?? list.items.length;
      apps.replaceChildren(...(list.items.length
        ? [el("p", { class: "muted", id: "cluster-apps-status" }, plural(total, "application"),
          list.nextCursor ? `, showing the first ${list.items.length}` : ""),
        el("table", { class: "data", id: "cluster-apps" }, el("thead", {}, el("tr", {}, el("th", {}, "Application"), el("th", {}, "Sync"), el("th", {}, "Health"), el("th", {}, "Updated"))), tbody),
        el("p", {}, el("a", { href: `#/apps?cluster=${encodeURIComponent(name)}`, id: "cluster-apps-link" }, "Open in the application list →"))]
        : [el("p", { class: "muted", id: "cluster-apps-status" }, "No applications on this cluster.")]));
    } catch (e) {
      header.replaceChildren(errorBox(e));
    }
  }
  await load();
  let timer = null;
  const unsubscribe = live.subscribe((type, data) => {
    if (!((type === "cluster" && data.name === name) || (type.startsWith("app") && data.cluster === name))) return;
    if (timer) return;
    timer = setTimeout(() => { timer = null; load(); }, 300);
  });
  return () => { unsubscribe(); if (timer) clearTimeout(timer); };
}
