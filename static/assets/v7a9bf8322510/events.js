// The list of sales: phase badges, what remains, links to each sale.
import { api, badge, el, header, money, notice, when } from "./app.js";

async function main() {
  header();
  const main = document.querySelector("main");
  const { ok, body } = await api("GET", "/api/events");
  if (!ok) {
    main.replaceChildren(notice("bad", "Sales are unavailable", "Please try again in a moment."));
    return;
  }
  const events = body.events;
  const cards = events.map((e) => {
    const remaining = e.tiers.reduce((n, t) => n + t.remaining, 0);
    const total = e.tiers.reduce((n, t) => n + t.stock_total, 0);
    const from = Math.min(...e.tiers.map((t) => t.price_cents));
    return el("article", { class: "card" },
      el("h2", {}, el("a", { href: `/event?id=${e.id}` }, e.name)), badge(e.phase),
      el("p", { class: "muted" }, e.venue || ""),
      el("p", {}, e.phase === "upcoming" || e.phase === "presale" ? `Opens ${when(e.opens_at)}` : `Closes ${when(e.closes_at)}`),
      el("p", {}, `From ${money(from)} · ${remaining} of ${total} left`));
  });
  main.replaceChildren(el("h1", {}, "Sales"),
    cards.length ? el("div", { class: "grid" }, cards) : el("p", { class: "muted" }, "No sales right now."));
}

main();
