// Log in or register, then go back where the visitor came from.
import { el, header, message, notice, param } from "./app.js";
import { withProof } from "./door.js";

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
    const show = (node) => status.replaceChildren(node);
    const result = await submit(username.value, password.value, show);
    if (result) status.replaceChildren(result);
  });
  return f;
}

// Many tries from the visitor's network lately: the origin asks for a proof
// of work first (the door's), which `withProof` solves. Everyone logging in at
// once before a sale: the origin answers `overloaded` at once rather than
// queue, and the page tries again when it says.
async function account(path, username, password, show) {
  for (let tries = 1; ; tries++) {
    const answer = await withProof(path, "/api/auth/challenge", show, { username, password });
    if (answer.status !== 503 || tries >= 6) return answer;
    const wait = ((answer.body && answer.body.retry_after_s) || 1) * (0.5 + Math.random());
    show(notice("info", "Busy right now", `Trying again in ${Math.ceil(wait)} s…`));
    await new Promise((resolve) => setTimeout(resolve, wait * 1000));
  }
}

async function login(username, password, show) {
  const { ok, body } = await account("/api/auth/login", username, password, show);
  if (!ok) {
    const wait = body && body.retry_after_s ? ` Try again in ${body.retry_after_s} s.` : "";
    return notice("bad", "Could not log in", message(body) + wait);
  }
  location.href = sameSite(param("next"));
  return null;
}

// `next` as a path of this site, or "/": a URL the browser would take to another
// host (`//host/…`, `/\host/…`, `https://…`) is not followed.
export function sameSite(next) {
  if (!next) return "/";
  try {
    const url = new URL(next, location.origin);
    return url.origin === location.origin ? url.pathname + url.search + url.hash : "/";
  } catch {
    return "/";
  }
}

async function register(username, password, show) {
  const { ok, body } = await account("/api/auth/register", username, password, show);
  if (!ok) return notice("bad", "Could not register", message(body) + (body && body.field ? ` (${body.field})` : ""));
  return login(username, password, show);
}

header();
document.querySelector("main").replaceChildren(
  el("h1", {}, "Log in"),
  el("div", { class: "grid" },
    form("Log in", "login", login),
    form("Register", "register", register)),
  el("p", { class: "muted" }, "Usernames: 3–32 letters, digits, '_', '.' or '-'. Passwords: at least 8 characters."));
