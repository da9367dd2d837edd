// My orders, newest first, each with its history: every change, with its time.
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
  // The changes come newest first; an order's history reads oldest first.
  const history = new Map();
  for (const change of [...(body.events || [])].reverse()) {
    if (!history.has(change.order_id)) history.set(change.order_id, []);
    history.get(change.order_id).push(change);
  }
  const said = (type) => type.replace("order.", "").replace("_", " ");
  const time = (iso) => new Date(iso).toLocaleTimeString();
  const rows = body.orders.map((o) => el("tr", {},
    el("td", {}, el("a", { href: `/order?id=${o.id}` }, when(o.created_at))),
    el("td", {}, el("a", { href: `/event?id=${o.event_id}` }, names.get(o.event_id) || `Sale ${o.event_id}`)),
    el("td", {}, String(o.quantity)),
    el("td", {}, money(o.amount_cents)),
    el("td", { "data-status": o.status }, o.status.replace("_", " ")),
    el("td", { "data-hook": "history" }, (history.get(o.id) || []).map((c, i) =>
      el("div", { "data-change": c.type }, `${said(c.type)} ${time(c.created_at)}`)))));
  main.replaceChildren(el("h1", {}, "My orders"),
    rows.length ? el("table", { id: "orders" },
      el("thead", {}, el("tr", {}, ["When", "Sale", "Qty", "Amount", "Status", "History"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows))
      : el("p", { class: "muted" }, "No orders yet."));
}

start();
