// edgecd console: the fleet's deployment record (every sync and rollback on every cluster, newest first): when, cluster, application, kind, revision from → to, result, who, duration and trace; filters live in the URL, more pages load on demand.

import { api } from "../api.js";
import { el, ago, errorBox, keyboardRows, natural, phaseBadge, shortRev, traceLink } from "../ui.js";

const seg = encodeURIComponent;
const RESULTS = ["", "Succeeded", "Failed", "Error"];
const SINCE = [["", "any time"], ["1h", "last hour"], ["24h", "last 24 hours"], ["7d", "last 7 days"], ["30d", "last 30 days"]];
const HOURS = { "1h": 1, "24h": 24, "7d": 24 * 7, "30d": 24 * 30 };
const PAGE = 100;

/** "from → to" revisions; a missing "from" (first deployment, or older than the kept history) shows as —. */
function revisions(d) {
  return el("span", { class: "mono revs" },
    d.fromRevision ? el("span", { title: d.fromRevision }, shortRev(d.fromRevision)) : el("span", { class: "muted" }, "—"),
    " → ",
    el("span", { title: d.toRevision }, shortRev(d.toRevision) || "—"));
}

function duration(d) {
  if (!d.startedAt || !d.finishedAt) return "";
  const s = Math.max(0, Math.round((new Date(d.finishedAt) - new Date(d.startedAt)) / 1000));
  return s < 120 ? `${s}s` : `${Math.round(s / 60)}m`;
}

export async function render({ root, query, navigate, live }) {
  const filter = {
    cluster: query.get("cluster") || "", project: query.get("project") || "", app: query.get("app") || "",
    user: query.get("user") || "", result: query.get("result") || "", since: query.get("since") || "",
  };
  const go = (changes) => navigate("/deployments", { ...filter, ...changes });
  const select = (name, label, options, value) => el("select", { name, "aria-label": label, onchange: (e) => go({ [name]: e.target.value }) },
    options.map(([v, text]) => el("option", { value: v, selected: v === value }, text)));
  const clusterSelect = select("cluster", "Cluster", [["", "any"], ...(filter.cluster ? [[filter.cluster, filter.cluster]] : [])], filter.cluster);
  const projectSelect = select("project", "Project", [["", "any"], ...(filter.project ? [[filter.project, filter.project]] : [])], filter.project);
  api.clusterChoices().then((c) => {
    const names = c.items.map((x) => x.name).sort(natural);
    clusterSelect.replaceChildren(el("option", { value: "" }, "any"), ...names.map((n) => el("option", { value: n, selected: n === filter.cluster }, n)));
  }).catch(() => {});
  api.projectChoices().then((p) => {
    const names = p.items.map((x) => x.name).sort(natural);
    projectSelect.replaceChildren(el("option", { value: "" }, "any"), ...names.map((n) => el("option", { value: n, selected: n === filter.project }, n)));
  }).catch(() => {});
  const text = (name, label, placeholder) => el("input", { type: "search", name, "aria-label": label, placeholder, value: filter[name],
    onchange: (e) => go({ [name]: e.target.value.trim() }) });

  const status = el("div", { class: "muted", id: "deployments-status" }, "Loading…");
  const tbody = el("tbody");
  keyboardRows(tbody);
  const more = el("button", { type: "button", id: "deployments-more", hidden: true }, "Show more");
  root.append(
    el("div", { class: "topline" }, el("h1", {}, "Deployments")),
    el("form", { class: "filters", onsubmit: (e) => e.preventDefault() },
      el("label", { class: "field" }, "Cluster", clusterSelect),
      el("label", { class: "field" }, "Project", projectSelect),
      el("label", { class: "field" }, "Application", text("app", "Application", "name")),
      el("label", { class: "field" }, "Started by", text("user", "Started by", "user, automated sync")),
      el("label", { class: "field" }, "Result", select("result", "Result", RESULTS.map((r) => [r, r || "any"]), filter.result)),
      el("label", { class: "field" }, "Finished", select("since", "Finished", SINCE, filter.since))),
    status,
    el("table", { class: "data", id: "deployments-table" },
      el("thead", {}, el("tr", {}, el("th", {}, "Finished"), el("th", {}, "Cluster"), el("th", {}, "Application"), el("th", {}, "Kind"),
        el("th", {}, "Revision"), el("th", {}, "Result"), el("th", {}, "Started by"), el("th", {}, "Took"), el("th", {}, "Trace"), el("th", {}, "Message"))),
      tbody),
    el("p", {}, more));

  const row = (d) => el("tr", { tabindex: "0", dataset: { result: d.result, kind: d.kind, cluster: d.cluster, app: `${d.project}/${d.app}` } },
    el("td", {}, ago(d.finishedAt)),
    el("td", {}, el("a", { href: `#/clusters/${seg(d.cluster)}` }, d.cluster)),
    el("td", {}, el("a", { href: `#/apps/${seg(d.project)}/${seg(d.app)}/history` }, `${d.project}/${d.app}`)),
    el("td", {}, d.kind === "rollback" ? `rollback to ${d.rollbackOf}` : "sync"),
    el("td", {}, revisions(d)),
    el("td", {}, phaseBadge(d.result)),
    el("td", {}, d.automated ? el("span", { class: "muted", title: d.initiatedBy }, d.initiatedBy) : d.initiatedBy || "—"),
    el("td", {}, duration(d)),
    el("td", {}, traceLink(d.traceId)),
    el("td", { class: "wrap" }, d.message));

  const since = () => (HOURS[filter.since] ? new Date(Date.now() - HOURS[filter.since] * 3600 * 1000).toISOString() : "");
  const ask = (page) => api.deployments({ limit: PAGE, cluster: filter.cluster, project: filter.project, app: filter.app,
    user: filter.user, result: filter.result, since: since(), page });
  let next = "";
  let shown = 0;
  const show = (data, append) => {
    const rows = data.items.map(row);
    if (append) tbody.append(...rows); else tbody.replaceChildren(...rows);
    shown = append ? shown + rows.length : rows.length;
    next = data.next || "";
    more.hidden = !next;
    status.textContent = shown ? `${shown} deployments${next ? " (newest first; more below)" : ", newest first."}` : "No deployments match.";
  };
  async function load() {
    try {
      show(await ask(""), false);
    } catch (e) {
      status.replaceChildren(errorBox(e));
    }
  }
  more.onclick = async () => {
    more.disabled = true;
    try {
      show(await ask(next), true);
    } catch (e) {
      status.replaceChildren(errorBox(e));
    } finally {
      more.disabled = false;
    }
  };
  await load();
  // A deployment arrives with its app's status: re-read the first page at most every 2 s while apps change (not
  // while more pages are open, which would lose the reader's place).
  let timer = null;
  const unsubscribe = live.subscribe((type) => {
    if (type !== "app" || timer || shown > PAGE) return;
    timer = setTimeout(() => { timer = null; load(); }, 2000);
  });
  return () => { unsubscribe(); if (timer) clearTimeout(timer); };
}
