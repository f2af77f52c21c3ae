// edgecd console: projects with their limits (sources, destinations in words, cluster-scoped kinds), roles and app counts.

import { api } from "../api.js";
import { el, errorBox, natural } from "../ui.js";

const list = (items, fmt, cls) => (items && items.length
  ? items.map((i) => el("div", { class: cls || "mono" }, fmt ? fmt(i) : i))
  : el("span", { class: "muted" }, "none"));

export async function render({ root }) {
  root.append(el("div", { class: "topline" }, el("h1", {}, "Projects")));
  let data;
  let counts;
  try {
    // App counts: one grouped aggregate (CountApplications' by-project buckets), scoped like the list to what the user may read.
    [data, counts] = await Promise.all([api.projects(), api.counts({}).catch(() => null)]);
  } catch (e) {
    root.append(errorBox(e));
    return;
  }
  const byProject = (counts && counts.byProject) || {};
  const items = data.items.slice().sort((a, b) => natural(a.name, b.name));
  root.append(el("table", { class: "data", id: "projects-table" },
    el("thead", {}, el("tr", {}, el("th", {}, "Name"), el("th", {}, "Description"), el("th", {}, "Source repositories"),
      el("th", {}, "Destinations"), el("th", {}, "Cluster-scoped kinds"), el("th", {}, "Roles"), el("th", {}, "Apps"))),
    el("tbody", {}, items.map((p) => {
      const s = p.spec || {};
      const n = counts ? byProject[p.name] || 0 : null;
      return el("tr", { dataset: { project: p.name } },
        el("td", {}, el("a", { href: `#/apps?project=${encodeURIComponent(p.name)}` }, p.name)),
        el("td", { class: "wrap" }, s.description || ""),
        el("td", { class: "wrap" }, list(s.sourceRepos)),
        el("td", { class: "wrap destinations" }, list(p.destinations, null, "destination")),
        el("td", { class: "wrap" }, list(s.clusterResourceWhitelist, (g) => `${g.kind}${g.group ? "." + g.group : ""}`)),
        el("td", { class: "wrap" }, list(s.roles, (r) => `${r.role}: ${[...(r.users || []), ...(r.groups || []).map((g) => "group:" + g)].join(", ")}`)),
        el("td", { class: "app-count" }, n == null ? "—" : el("a", { href: `#/apps?project=${encodeURIComponent(p.name)}` }, String(n))));
    }))));
}
