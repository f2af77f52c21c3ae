// edgecd console: projects with their limits (sources, destinations, cluster-scoped kinds) and roles.

import { api } from "../api.js";
import { el, errorBox } from "../ui.js";

const list = (items, fmt) => (items && items.length
  ? items.map((i) => el("div", { class: "mono" }, fmt ? fmt(i) : i))
  : el("span", { class: "muted" }, "none"));

export async function render({ root }) {
  root.append(el("div", { class: "topline" }, el("h1", {}, "Projects")));
  let data;
  try {
    data = await api.projects();
  } catch (e) {
    root.append(errorBox(e));
    return;
  }
  root.append(el("table", { class: "data", id: "projects-table" },
    el("thead", {}, el("tr", {}, el("th", {}, "Name"), el("th", {}, "Description"), el("th", {}, "Source repositories"),
      el("th", {}, "Destinations"), el("th", {}, "Cluster-scoped kinds"), el("th", {}, "Roles"), el("th", {}, "Apps"))),
    el("tbody", {}, data.items.map((p) => {
      const s = p.spec || {};
      return el("tr", {},
        el("td", {}, el("a", { href: `#/apps?project=${encodeURIComponent(p.name)}` }, p.name)),
        el("td", { class: "wrap" }, s.description || ""),
        el("td", { class: "wrap" }, list(s.sourceRepos)),
        el("td", { class: "wrap" }, list(s.destinations, (d) => JSON.stringify(d))),
        el("td", { class: "wrap" }, list(s.clusterResourceWhitelist, (g) => `${g.kind}${g.group ? "." + g.group : ""}`)),
        el("td", { class: "wrap" }, list(s.roles, (r) => `${r.role}: ${[...(r.users || []), ...(r.groups || []).map((g) => "group:" + g)].join(", ")}`)),
        el("td", {}, String(p.appCount ?? "—")));
    }))));
}
