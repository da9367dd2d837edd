// One order: its live status, the payment countdown, pay and cancel.
import { api, fill, calibrate, countdown, el, header, money, notice, param, serverNow, when } from "./app.js";

const id = param("id");
const main = document.querySelector("main");
let order = null;
let saleName = null;
let timer = null;

const STATUS = {
  queued: ["info", "Creating your order", "Your tickets are held; the order is being written."],
  awaiting_payment: ["warn", "Awaiting payment", "Pay before the countdown ends, or the tickets go back on sale."],
  paid: ["ok", "Paid — you're going!", "Your tickets are yours."],
  expired: ["bad", "Expired", "The payment window ended and the tickets went back on sale."],
  cancelled: ["bad", "Cancelled", "You cancelled this order; the tickets went back on sale."],
};

async function fetchOrder() {
  const { ok, status, body } = await api("GET", `/api/orders/${id}`);
  if (status === 401) {
    main.replaceChildren(notice("warn", "Please log in", "", el("a", { href: `/login?next=${encodeURIComponent(location.pathname + location.search)}` }, "Log in")));
    return false;
  }
  if (!ok) {
    main.replaceChildren(notice("bad", "No such order", (body && body.message) || ""), el("a", { href: "/orders" }, "My orders"));
    return false;
  }
  order = body;
  if (saleName === null) {
    saleName = "";
    // The sale's name, from the edge-cached public view; the id is shown without it.
    const sale = await api("GET", `/api/events/${order.event_id}`);
    if (sale.ok) saleName = sale.body.name;
  }
  return true;
}

function render(extra) {
  const [kind, title, text] = STATUS[order.status] || ["info", order.status, ""];
  const clock = el("div", { class: "countdown", role: "timer", "aria-live": "off", id: "payment-countdown" });
  const actions = order.status === "awaiting_payment"
    ? el("div", { class: "actions" },
      el("button", { type: "button", id: "pay", onclick: pay }, `Pay ${money(order.amount_cents)}`),
      el("button", { type: "button", class: "secondary", id: "cancel", onclick: cancel }, "Cancel order"))
    : null;
  fill(main,
    el("h1", {}, "Your order"),
    el("div", { id: "order-status", "aria-live": "polite" }, notice(kind, title, text)),
    order.status === "awaiting_payment" ? el("section", { class: "card", "aria-label": "Time left to pay" }, el("div", { class: "muted" }, "Time left to pay"), clock) : null,
    actions, extra || null,
    el("table", {}, el("tbody", {},
      el("tr", {}, el("th", {}, "Status"), el("td", { "data-status": order.status }, order.status.replace("_", " "))),
      el("tr", {}, el("th", {}, "Quantity"), el("td", {}, String(order.quantity))),
      el("tr", {}, el("th", {}, "Amount"), el("td", {}, money(order.amount_cents))),
      el("tr", {}, el("th", {}, "Held at"), el("td", {}, when(order.created_at))),
      order.paid_at ? el("tr", {}, el("th", {}, "Paid at"), el("td", {}, when(order.paid_at))) : null,
      el("tr", {}, el("th", {}, "Sale"), el("td", {}, el("a", { href: `/event?id=${order.event_id}` }, saleName || `Sale ${order.event_id}`))),
      el("tr", {}, el("th", {}, "Order"), el("td", {}, el("code", {}, order.id))))),
    el("p", {}, el("a", { href: "/orders" }, "All my orders")));
  clearInterval(timer);
  if (order.status === "awaiting_payment") {
    const update = () => {
      const left = Date.parse(order.expires_at) - serverNow();
      clock.textContent = countdown(left);
      if (left <= 0) { clearInterval(timer); poll(); }
    };
    update();
    timer = setInterval(update, 250);
  }
}

async function pay() {
  document.getElementById("pay").disabled = true;
  const { ok, body } = await api("POST", `/api/orders/${id}/pay`);
  if (ok) { order = body; render(); return; }
  await fetchOrder();
  render(notice("bad", "Payment failed", (body && body.message) || ""));
}

async function cancel() {
  if (!confirm("Cancel this order? The tickets go back on sale.")) return;
  const { ok, body } = await api("POST", `/api/orders/${id}/cancel`);
  if (ok) { order = body; render(); return; }
  await fetchOrder();
  render(notice("bad", "Could not cancel", (body && body.message) || ""));
}

/** Follows a queued order until it is written. */
async function poll() {
  if (!(await fetchOrder())) return;
  render();
  if (order.status === "queued") setTimeout(poll, 700);
}

async function start() {
  header();
  if (!id) { main.replaceChildren(notice("bad", "No order chosen", "")); return; }
  await calibrate();
  await poll();
}

start();
