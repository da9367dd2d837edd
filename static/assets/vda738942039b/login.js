// Log in or register, then go back where the visitor came from.
import { api, el, header, message, notice, param } from "./app.js";

function form(title, action, submit) {
  const username = el("input", { id: `${action}-username`, name: "username", autocomplete: "username", required: true });
  const password = el("input", {
    id: `${action}-password`, name: "password", type: "password", required: true,
    autocomplete: action === "register" ? "new-password" : "current-password",
  });
  const status = el("div", { "aria-live": "polite" });
  const f = el("form", { class: "card" },
    el("h2", {}, title),
    el("label", { for: username.id }, "Username"), username,
    el("label", { for: password.id }, "Password"), password,
    el("p", {}, el("button", { type: "submit" }, title)), status);
  f.addEventListener("submit", async (e) => {
    e.preventDefault();
    status.replaceChildren();
    const result = await submit(username.value, password.value);
    if (result) status.replaceChildren(result);
  });
  return f;
}

async function login(username, password) {
  const { ok, body } = await api("POST", "/api/auth/login", { username, password });
  if (!ok) return notice("bad", "Could not log in", message(body));
  const next = param("next");
  location.href = next && next.startsWith("/") ? next : "/";
  return null;
}

async function register(username, password) {
  const { ok, body } = await api("POST", "/api/auth/register", { username, password });
  if (!ok) return notice("bad", "Could not register", message(body) + (body && body.field ? ` (${body.field})` : ""));
  return login(username, password);
}

header();
document.querySelector("main").replaceChildren(
  el("h1", {}, "Log in"),
  el("div", { class: "grid" },
    form("Log in", "login", login),
    form("Register", "register", register)),
  el("p", { class: "muted" }, "Usernames: 3–32 letters, digits, '_', '.' or '-'. Passwords: at least 8 characters."));
