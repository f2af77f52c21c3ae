// edgecd console: the fleet's recent events (newest first): time, cluster, application, object, reason and message; filter by cluster and severity.

import { api } from "../api.js";
import { el, ago, errorBox, keyboardRows, natural } from "../ui.js";

const seg = encodeURIComponent;

/** The object an event is about: a resource of an app, the app itself, or a cluster. */
export function objectCell(e) {
  if (e.resource) return el("span", { class: "mono", dataset: { object: "resource" } }, e.resource);
  if (e.app) return el("span", { dataset: { object: "app" } }, "Application ", el("a", { href: `#/apps/${seg(e.project)}/${seg(e.app)}` }, e.app));
  return el("span", { dataset: { object: "cluster" } }, "Cluster ", el("a", { href: `#/clusters/${seg(e.cluster)}` }, e.cluster));
}

export const reasonCell = (e) => (e.severity === "Warning"
  ? el("span", { class: "badge b-warn", title: "Warning" }, el("span", { class: "i", "aria-hidden": "true" }, "!"), e.reason)
  : e.reason);

export async function render({ root, query, navigate, live }) {
  const filter = { cluster: query.get("cluster") || "", severity: query.get("severity") || "" };
  const go = (changes) => navigate("/events", { ...filter, ...changes });
  const clusterSelect = el("select", { name: "cluster", "aria-label": "Cluster", onchange: (e) => go({ cluster: e.target.value }) },
    el("option", { value: "" }, "any"), filter.cluster ? el("option", { value: filter.cluster, selected: true }, filter.cluster) : "");
  const severitySelect = el("select", { name: "severity", "aria-label": "Severity", onchange: (e) => go({ severity: e.target.value }) },
    ["", "Warning"].map((s) => el("option", { value: s, selected: s === filter.severity }, s || "any")));
  api.clusterChoices().then((c) => {
    const names = c.items.map((x) => x.name).sort(natural);
    clusterSelect.replaceChildren(el("option", { value: "" }, "any"),
      ...names.map((n) => el("option", { value: n, selected: n === filter.cluster }, n)));
  }).catch(() => {});
  const status = el("div", { class: "muted", id: "events-status" }, "Loading…");
  const tbody = el("tbody");
  keyboardRows(tbody);
  root.append(
    el("div", { class: "topline" }, el("h1", {}, "Events")),
    el("form", { class: "filters", onsubmit: (e) => e.preventDefault() },
      el("label", { class: "field" }, "Cluster", clusterSelect),
      el("label", { class: "field" }, "Severity", severitySelect)),
    status,
    el("table", { class: "data", id: "events-table" },
      el("thead", {}, el("tr", {}, el("th", {}, "When"), el("th", {}, "Cluster"), el("th", {}, "Application"),
        el("th", {}, "Object"), el("th", {}, "Reason"), el("th", {}, "Message"))),
      tbody));

  async function load() {
    let data;
    try {
      data = await api.events({ limit: 200, cluster: filter.cluster, severity: filter.severity });
    } catch (e) {
      status.replaceChildren(errorBox(e));
      return;
    }
    tbody.replaceChildren(...data.items.map((e) => el("tr", { tabindex: "0", dataset: { reason: e.reason, severity: e.severity } },
      el("td", {}, ago(e.time)),
      el("td", {}, e.cluster ? el("a", { href: `#/clusters/${seg(e.cluster)}` }, e.cluster) : ""),
      el("td", {}, e.app ? el("a", { href: `#/apps/${seg(e.project)}/${seg(e.app)}` }, `${e.project}/${e.app}`) : el("span", { class: "muted" }, "—")),
      el("td", { class: "object" }, objectCell(e)),
      el("td", {}, reasonCell(e)),
      el("td", { class: "wrap" }, e.message))));
    status.textContent = data.items.length ? `The latest ${data.items.length} events, newest first.` : "No events.";
  }
  await load();
  // Events arrive with app status: re-read the list (one page) at most every 2 s while apps change.
  let timer = null;
  const unsubscribe = live.subscribe((type) => {
    if (type !== "app" || timer) return;
    timer = setTimeout(() => { timer = null; load(); }, 2000);
  });
  return () => { unsubscribe(); if (timer) clearTimeout(timer); };
}
