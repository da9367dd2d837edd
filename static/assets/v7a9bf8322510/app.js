// Shared by every page: the JSON API, the server clock, the header, formatting.

/** Calls the API; resolves to {status, body, ok} and never throws on HTTP errors. */
export async function api(method, path, body, headers = {}) {
  const init = { method, headers: { ...headers }, credentials: "same-origin" };
  if (body !== undefined) init.body = JSON.stringify(body);
  // Every request that changes something says it is JSON, an empty one too:
  // the server refuses cookie requests of the types another site's form could
  // send.
  if (body !== undefined || (method !== "GET" && method !== "HEAD")) {
    init.headers["content-type"] = "application/json";
  }
  try {
    const response = await fetch(path, init);
    let data = null;
    const text = await response.text();
    try { data = text ? JSON.parse(text) : null; } catch { data = { error: "bad_response", message: text }; }
    return { status: response.status, ok: response.ok, body: data };
  } catch {
    return { status: 0, ok: false, body: { error: "network", message: "Cannot reach the server." } };
  }
}

let offsetMs = 0;

/** Measures how far this device's clock is from the server's, from the round
 * trip with the smallest delay; countdowns use server time from then on. */
export async function calibrate(samples = 3) {
  let best = null;
  for (let i = 0; i < samples; i++) {
    const sent = Date.now();
    const { ok, body } = await api("GET", "/api/time");
    const received = Date.now();
    if (!ok) continue;
    const rtt = received - sent;
    const offset = Date.parse(body.now) - (sent + rtt / 2);
    if (!best || rtt < best.rtt) best = { rtt, offset };
  }
  if (best) offsetMs = best.offset;
  return offsetMs;
}

export const serverNow = () => Date.now() + offsetMs;
export const clockOffset = () => offsetMs;

/** "1 d 02:03:04", "02:03:04" or "03:04". */
export function countdown(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const d = Math.floor(total / 86400), h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60), s = total % 60;
  const pad = (n) => String(n).padStart(2, "0");
  const hms = h > 0 || d > 0 ? `${pad(h)}:${pad(m)}:${pad(s)}` : `${pad(m)}:${pad(s)}`;
  return d > 0 ? `${d} d ${hms}` : hms;
}

export const money = (cents) => (cents / 100).toLocaleString(undefined, { style: "currency", currency: "EUR" });
export const when = (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });

const PHASES = { hidden: "Hidden", upcoming: "Upcoming", presale: "Presale", open: "On sale", sold_out: "Sold out", closed: "Closed" };
export function badge(phase) {
  const span = el("span", { class: `badge ${phase}` }, PHASES[phase] || phase);
  return span;
}

/** Builds an element: el("a", {href: "/"}, "text", child, ...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v == null) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replaces a node's children, skipping null and false (optional parts). */
export function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c != null && c !== false));
}

/** A notice: kind is ok, warn, bad or info. */
export function notice(kind, title, text, ...extra) {
  return el("div", { class: `notice ${kind}`, role: kind === "bad" ? "alert" : "status" }, el("strong", {}, title), text, ...extra);
}

let whoami;
/** The signed-in user {user_id, role}, or null. */
export async function me() {
  if (whoami !== undefined) return whoami;
  const { ok, body } = await api("GET", "/api/me");
  whoami = ok ? body : null;
  return whoami;
}

/** A stable anonymous id for this browser, for unique-visitor counts. */
export function visitorId() {
  let id = localStorage.getItem("rushgate.visitor");
  if (!id) {
    id = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");
    localStorage.setItem("rushgate.visitor", id);
  }
  return id;
}

/** Fills the site header's navigation for the current user. */
export async function header() {
  const nav = document.querySelector("header.site nav");
  if (!nav) return;
  const user = await me();
  const links = [el("a", { href: "/" }, "Events")];
  if (user) {
    links.push(el("a", { href: "/orders" }, "My orders"));
    if (user.role === "operator" || user.role === "admin") links.push(el("a", { href: "/admin" }, "Console"));
    links.push(el("button", {
      class: "secondary", type: "button",
      onclick: async () => { await api("POST", "/api/auth/logout", {}); location.href = "/"; },
    }, "Log out"));
  } else {
    links.push(el("a", { href: `/login?next=${encodeURIComponent(location.pathname + location.search)}` }, "Log in"));
  }
  nav.replaceChildren(...links);
}

export const param = (name) => new URLSearchParams(location.search).get(name);

export function message(body, fallback = "Something went wrong.") {
  return (body && body.message) || fallback;
}
