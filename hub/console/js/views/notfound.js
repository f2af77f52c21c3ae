// edgecd console: the page for a URL the console does not know, inside the navigation shell.

import { el } from "../ui.js";

export async function render({ root, params }) {
  const [path] = params;
  root.append(
    el("div", { class: "topline" }, el("h1", { id: "not-found" }, "Page not found")),
    el("div", { class: "panel" },
      el("p", {}, "The console has no page at ", el("code", { id: "not-found-path" }, "#" + path), "."),
      el("p", {}, "Go to the ", el("a", { href: "#/overview" }, "overview"), ", the ",
        el("a", { href: "#/apps" }, "applications"), " or the ", el("a", { href: "#/clusters" }, "clusters"), ".")));
}
