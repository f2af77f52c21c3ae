// edgecd console: one application (summary, resource tree, diff, history with rollback, conditions and events, actions).

import { api } from "../api.js";
import { el, healthBadge, syncBadge, connectionBadge, phaseBadge, ago, shortRev, errorBox, labels } from "../ui.js";

const TABS = [["", "Summary"], ["tree", "Resources"], ["diff", "Diff"], ["history", "History"], ["events", "Events"]];

function resourceName(r) {
  return `${r.kind} ${r.namespace ? r.namespace + "/" : ""}${r.name}`;
}

export async function render({ root, params, live, toast }) {
  const [project, name, tab = ""] = params;
  const base = `#/apps/${encodeURIComponent(project)}/${encodeURIComponent(name)}`;
  const header = el("div");
  const content = el("div", { id: "tab-content" });
  root.append(header,
    el("nav", { class: "tabs", "aria-label": "Application sections" },
      TABS.map(([key, text]) => el("a", { href: key ? `${base}/${key}` : base, class: key === tab ? "active" : "", "aria-current": key === tab ? "page" : null }, text))),
    content);

  let detail;
  async function act(kind, body) {
    try {
      const result = await api.command(project, name, kind, body);
      toast(`${kind} of ${project}/${name}: ${result.state || "issued"}${result.message ? " — " + result.message : ""}`);
    } catch (e) {
      toast(`${kind} failed: ${e.message}`);
    }
  }

  function renderHeader() {
    const a = detail.app;
    const st = detail.status || {};
    const op = st.operationState;
    const stale = a.connection && a.connection !== "Connected";
    const may = detail.permissions || {};
    header.replaceChildren(
      el("div", { class: "topline" },
        el("h1", {}, el("span", { class: "muted" }, a.project + " / "), a.name),
        el("span", { id: "app-sync" }, syncBadge(a.sync)),
        el("span", { id: "app-health" }, healthBadge(a.health)),
        stale ? connectionBadge(a.connection, "the cluster is " + a.connection + "; this is the last reported status") : "",
        el("span", { class: "grow" }),
        may.operate ? el("button", { type: "button", class: "primary", id: "sync-button", onclick: () => act("sync") }, "Sync") : "",
        may.operate ? el("button", { type: "button", id: "refresh-button", onclick: () => act("refresh") }, "Refresh") : "",
        may.operate && op && op.phase === "Running" ? el("button", { type: "button", class: "danger", onclick: () => act("terminate") }, "Terminate") : ""),
      stale ? el("div", { class: "notice" }, `Cluster ${a.cluster} is ${a.connection}${a.connectionSince ? " since " + new Date(a.connectionSince).toLocaleString() : ""}: status shown is the last report.`) : "",
      a.origin === "Autonomous" ? el("div", { class: "notice" }, "Created at the edge: read-only here; commands still work.") : "");
  }

  function summary() {
    const a = detail.app;
    const spec = detail.spec || {};
    const src = spec.source || {};
    const dst = spec.destination || {};
    const st = detail.status || {};
    const op = st.operationState;
    const auto = spec.syncPolicy && spec.syncPolicy.automated;
    return el("div", { class: "grid2" },
      el("div", { class: "panel" }, el("dl", { class: "kv" },
        el("dt", {}, "Project"), el("dd", {}, a.project),
        el("dt", {}, "Cluster"), el("dd", {}, el("a", { href: `#/clusters/${encodeURIComponent(a.cluster)}` }, a.cluster)),
        el("dt", {}, "Namespace"), el("dd", {}, dst.namespace || "—"),
        el("dt", {}, "Repository"), el("dd", { class: "mono" }, src.repoURL || "—"),
        el("dt", {}, "Path"), el("dd", { class: "mono" }, src.path || "."),
        el("dt", {}, "Target revision"), el("dd", { class: "mono" }, src.targetRevision || "HEAD"),
        el("dt", {}, "Synced revision"), el("dd", { class: "mono", title: a.revision }, shortRev(a.revision) || "—"),
        el("dt", {}, "Sync policy"), el("dd", {}, auto ? `automated${auto.prune ? ", prune" : ""}${auto.selfHeal ? ", self-heal" : ""}` : "manual"),
        el("dt", {}, "Labels"), el("dd", {}, labels(a.labels)),
        a.owner ? [el("dt", {}, "Owner"), el("dd", {}, `${a.owner.kind} ${a.owner.project}/${a.owner.name}`)] : "",
        el("dt", {}, "Last reconciled"), el("dd", {}, ago(st.reconciledAt)))),
      el("div", {},
        el("div", { class: "panel" },
          el("h2", { class: "first" }, "Operation"),
          op ? el("dl", { class: "kv" },
            el("dt", {}, "Phase"), el("dd", {}, phaseBadge(op.phase)),
            el("dt", {}, "Message"), el("dd", {}, op.message || "—"),
            el("dt", {}, "Started"), el("dd", {}, ago(op.startedAt)),
            el("dt", {}, "Finished"), el("dd", {}, ago(op.finishedAt)),
            el("dt", {}, "Initiated by"), el("dd", {}, op.initiatedBy || "—"))
            : el("p", { class: "muted" }, "No operation yet.")),
        el("h2", {}, "Conditions"),
        (st.conditions || []).length
          ? el("table", { class: "data", id: "conditions" }, el("tbody", {}, st.conditions.map((c) =>
            el("tr", {}, el("td", {}, el("span", { class: /Error|Warning/.test(c.type) ? "badge b-bad" : "badge b-neutral" }, c.type)),
              el("td", { class: "wrap" }, c.message), el("td", {}, ago(c.lastTransitionTime))))))
          : el("p", { class: "muted" }, "No conditions.")));
  }

  async function tree() {
    const data = await api.tree(project, name);
    const nodes = data.nodes || [];
    if (!nodes.length) return el("p", { class: "muted" }, "No resources reported yet.");
    const byParent = new Map();
    for (const n of nodes) {
      const key = n.parent || "";
      if (!byParent.has(key)) byParent.set(key, []);
      byParent.get(key).push(n);
    }
    const branch = (parent) => {
      const children = byParent.get(parent) || [];
      if (!children.length) return "";
      return el("ul", { class: "tree" }, children.map((n) => el("li", { dataset: { kind: n.kind, name: n.name } },
        el("span", { class: "node" },
          el("span", { class: "kind" }, n.kind), el("strong", {}, n.namespace ? `${n.namespace}/${n.name}` : n.name),
          n.sync ? syncBadge(n.sync) : "", n.health ? healthBadge(n.health, n.healthMessage) : "",
          n.healthMessage ? el("span", { class: "muted" }, n.healthMessage) : ""),
        branch(n.uid))));
    };
    return el("div", { class: "panel", id: "resource-tree" }, branch(""));
  }

  async function diff() {
    const data = await api.diff(project, name);
    const items = data.resources || [];
    if (!items.length) return el("p", { class: "muted", id: "diff-empty" }, "No differences: live state matches git.");
    return el("div", { id: "diff" }, items.map((r) => el("section", {},
      el("h2", {}, resourceName(r), " ", r.status ? syncBadge(r.status) : ""),
      el("pre", { class: "diff" }, (r.diff || "").split("\n").map((line) =>
        el("span", { class: line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "" }, line + "\n"))))));
  }

  function history() {
    const entries = ((detail.status || {}).history || []).slice().reverse();
    if (!entries.length) return el("p", { class: "muted" }, "No syncs yet.");
    const may = detail.permissions || {};
    const auto = detail.spec && detail.spec.syncPolicy && detail.spec.syncPolicy.automated;
    return el("div", {},
      auto && may.operate ? el("p", { class: "muted" }, "Rollback needs automated sync turned off.") : "",
      el("table", { class: "data", id: "history" },
        el("thead", {}, el("tr", {}, el("th", {}, "ID"), el("th", {}, "Revision"), el("th", {}, "Result"), el("th", {}, "Deployed"), el("th", {}, "By"), el("th", {}, ""))),
        el("tbody", {}, entries.map((h) => el("tr", {},
          el("td", {}, String(h.id)), el("td", { class: "mono", title: h.revision }, shortRev(h.revision)),
          el("td", {}, phaseBadge(h.result)), el("td", {}, ago(h.deployedAt)), el("td", {}, h.initiatedBy || ""),
          el("td", {}, may.operate && !auto
            ? el("button", { type: "button", onclick: () => act("rollback", { id: h.id }) }, "Roll back to this") : ""))))));
  }

  async function events() {
    const data = await api.appEvents(project, name);
    const items = data.items || [];
    if (!items.length) return el("p", { class: "muted" }, "No events.");
    return el("table", { class: "data", id: "events" },
      el("thead", {}, el("tr", {}, el("th", {}, "When"), el("th", {}, "Reason"), el("th", {}, "Object"), el("th", {}, "Message"))),
      el("tbody", {}, items.map((e) => el("tr", {},
        el("td", {}, ago(e.time)),
        el("td", {}, e.severity === "Warning" ? el("span", { class: "badge b-warn" }, e.reason) : e.reason),
        el("td", {}, e.resource || ""), el("td", { class: "wrap" }, e.message)))));
  }

  async function load() {
    try {
      detail = await api.app(project, name);
      renderHeader();
      let body;
      if (tab === "tree") body = await tree();
      else if (tab === "diff") body = await diff();
      else if (tab === "history") body = history();
      else if (tab === "events") body = await events();
      else body = summary();
      content.replaceChildren(body);
    } catch (e) {
      content.replaceChildren(errorBox(e));
    }
  }

  await load();
  // Live: reload this app (one row and its status) when it changes. The
  // diff tab asks the spoke, so it is only refreshed on demand.
  let timer = null;
  const unsubscribe = live.subscribe((type, data) => {
    const mine = (type === "app" || type === "app-deleted") && data.project === project && data.name === name;
    const cluster = type === "cluster" && detail && data.name === detail.app.cluster;
    if (!mine && !cluster) return;
    if (tab === "diff") { if (detail && mine) { detail.app = { ...detail.app, ...data }; renderHeader(); } return; }
    if (timer) return;
    timer = setTimeout(() => { timer = null; load(); }, 200);
  });
  return () => { unsubscribe(); if (timer) clearTimeout(timer); };
}
