// My orders, newest first.
import { api, el, header, money, notice, when } from "./app.js";

async function start() {
  header();
  const main = document.querySelector("main");
  const [{ ok, status, body }, sales] = await Promise.all([api("GET", "/api/me/orders"), api("GET", "/api/events")]);
  const names = new Map(sales.ok ? sales.body.events.map((e) => [e.id, e.name]) : []);
  if (status === 401) {
    main.replaceChildren(el("h1", {}, "My orders"), notice("warn", "Please log in", "", el("a", { href: "/login?next=/orders" }, "Log in")));
    return;
  }
  if (!ok) { main.replaceChildren(notice("bad", "Orders are unavailable", "Please try again in a moment.")); return; }
  const rows = body.orders.map((o) => el("tr", {},
    el("td", {}, el("a", { href: `/order?id=${o.id}` }, when(o.created_at))),
    el("td", {}, el("a", { href: `/event?id=${o.event_id}` }, names.get(o.event_id) || `Sale ${o.event_id}`)),
    el("td", {}, String(o.quantity)),
    el("td", {}, money(o.amount_cents)),
    el("td", { "data-status": o.status }, o.status.replace("_", " "))));
  main.replaceChildren(el("h1", {}, "My orders"),
    rows.length ? el("table", { id: "orders" },
      el("thead", {}, el("tr", {}, ["When", "Sale", "Qty", "Amount", "Status"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows))
      : el("p", { class: "muted" }, "No orders yet."));
}

start();
