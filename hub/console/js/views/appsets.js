// edgecd console: application sets and the apps each generated.

import { api } from "../api.js";
import { el, errorBox } from "../ui.js";

export async function render({ root }) {
  root.append(el("div", { class: "topline" }, el("h1", {}, "Application sets")));
  let data;
  try {
    data = await api.appsets();
  } catch (e) {
    root.append(errorBox(e));
    return;
  }
  if (!data.items.length) {
    root.append(el("p", { class: "muted" }, "No application sets."));
    return;
  }
  root.append(el("table", { class: "data", id: "appsets-table" },
    el("thead", {}, el("tr", {}, el("th", {}, "Project"), el("th", {}, "Name"), el("th", {}, "Evaluated at"), el("th", {}, "Generated apps"))),
    el("tbody", {}, data.items.map((s) => el("tr", {},
      el("td", {}, s.project), el("td", {}, s.name), el("td", {}, s.scope || "hub"),
      el("td", {}, el("a", { href: `#/apps?project=${encodeURIComponent(s.project)}&owner=${encodeURIComponent(s.name)}` }, String(s.generated ?? "—"))))))));
}
