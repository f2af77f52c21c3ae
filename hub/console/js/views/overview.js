// edgecd console: the overview page (counts by health, sync and connection; failing apps; recent events).

import { api } from "../api.js";
import { el, healthBadge, shownHealthBadge, syncBadge, connectionBadge, ago, errorBox } from "../ui.js";

const HEALTHS = ["Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"];
const SYNCS = ["Synced", "OutOfSync", "Unknown"];
const CONNECTIONS = ["Connected", "Stale", "Disconnected", "Pending", "Revoked"];

function card(n, label, href) {
  return el("div", { class: "card" }, el("a", { href },
    el("div", { class: "n" }, String(n ?? 0)), el("div", { class: "l" }, label)));
}

export async function render({ root, live }) {
  const body = el("div");
  root.append(el("div", { class: "topline" }, el("h1", {}, "Overview")), body);

  async function load() {
    let counts, clusters, failing, events;
    try {
      [counts, clusters, failing, events] = await Promise.all([
        api.counts({}),
        api.clusters(),
        api.apps({ health: "Degraded,Missing", limit: 10, sort: "updated", desc: 1 }),
        api.events({ limit: 15 }).catch(() => ({ items: [] })),
      ]);
    } catch (e) {
      body.replaceChildren(errorBox(e));
      return;
    }
    const byConn = {};
    for (const c of clusters.items) byConn[c.connection] = (byConn[c.connection] || 0) + 1;
    body.replaceChildren(
      el("h2", {}, "Applications"),
      el("div", { class: "cards", id: "counts" },
        card(counts.total, "Applications", "#/apps"),
        HEALTHS.filter((h) => counts.byHealth[h]).map((h) =>
          el("div", { class: "card", dataset: { health: h } }, el("a", { href: `#/apps?health=${h}` },
            el("div", { class: "n" }, String(counts.byHealth[h])), healthBadge(h)))),
        SYNCS.filter((s) => counts.bySync[s]).map((s) =>
          el("div", { class: "card", dataset: { sync: s } }, el("a", { href: `#/apps?sync=${s}` },
            el("div", { class: "n" }, String(counts.bySync[s])), syncBadge(s))))),
      el("h2", {}, "Clusters"),
      el("div", { class: "cards", id: "cluster-counts" },
        card(clusters.items.length, "Clusters", "#/clusters"),
        CONNECTIONS.filter((c) => byConn[c]).map((c) =>
          el("div", { class: "card", dataset: { connection: c } }, el("a", { href: "#/clusters" },
            el("div", { class: "n" }, String(byConn[c])), connectionBadge(c))))),
      el("div", { class: "grid2" },
        el("div", {},
          el("h2", {}, "Failing applications"),
          failing.items.length
            ? el("table", { class: "data" },
              el("thead", {}, el("tr", {}, el("th", {}, "Application"), el("th", {}, "Cluster"), el("th", {}, "Health"), el("th", {}, "Updated"))),
              el("tbody", {}, failing.items.map((a) => el("tr", {},
                el("td", {}, el("a", { href: `#/apps/${encodeURIComponent(a.project)}/${encodeURIComponent(a.name)}` }, `${a.project}/${a.name}`)),
                el("td", {}, a.cluster), el("td", {}, shownHealthBadge(a)), el("td", {}, ago(a.updatedAt))))))
            : el("p", { class: "muted" }, "No failing applications.")),
        el("div", {},
          el("h2", {}, "Recent events"),
          events.items.length
            ? el("table", { class: "data" },
              el("thead", {}, el("tr", {}, el("th", {}, "When"), el("th", {}, "App"), el("th", {}, "Reason"), el("th", {}, "Message"))),
              el("tbody", {}, events.items.map((ev) => el("tr", {},
                el("td", {}, ago(ev.time)),
                el("td", {}, ev.app ? el("a", { href: `#/apps/${encodeURIComponent(ev.project)}/${encodeURIComponent(ev.app)}` }, `${ev.project}/${ev.app}`) : ev.cluster),
                el("td", {}, ev.severity === "Warning" ? el("span", { class: "badge b-warn" }, ev.reason) : ev.reason),
                el("td", { class: "wrap" }, ev.message)))))
            : el("p", { class: "muted" }, "No events yet."))));
  }

  await load();
  // Aggregates are cheap queries: refresh them at most once a second when
  // anything changes, instead of polling.
  let timer = null;
  const unsubscribe = live.subscribe(() => {
    if (timer) return;
    timer = setTimeout(() => { timer = null; load(); }, 1000);
  });
  return () => { unsubscribe(); if (timer) clearTimeout(timer); };
}
