// edgecd console: the sign-in page (local account; the hub sets an HttpOnly session cookie).

import { api } from "../api.js";
import { el, errorBox } from "../ui.js";

export async function render({ root, query, onLogin }) {
  const user = el("input", { name: "username", autocomplete: "username", required: true, autofocus: true, "aria-label": "User name" });
  const pass = el("input", { name: "password", type: "password", autocomplete: "current-password", required: true, "aria-label": "Password" });
  const status = el("div");
  const submit = el("button", { type: "submit", class: "primary" }, "Sign in");
  const form = el("form", {
    onsubmit: async (e) => {
      e.preventDefault();
      submit.disabled = true;
      status.replaceChildren();
      try {
        await api.login(user.value, pass.value);
        await onLogin(query.get("next"));
      } catch (err) {
        status.replaceChildren(errorBox(err));
        submit.disabled = false;
      }
    },
  },
    el("label", { class: "field" }, "User name", user),
    el("label", { class: "field" }, "Password", pass),
    submit,
    status);
  root.append(el("div", { class: "login panel" }, el("h1", {}, "Sign in to edgecd"), form));
}
