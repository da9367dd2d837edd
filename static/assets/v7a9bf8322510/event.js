// One sale: a countdown on server time, tier and quantity, and a buy button that
// wakes up when the sale opens (in queue mode: when it is the user's turn; in a
// presale: for holders of a presale code) and explains every answer it gets.
import { api, fill, badge, calibrate, countdown, el, header, me, money, notice, param, serverNow, visitorId, when } from "./app.js";
import { throughDoor } from "./door.js";
import { queueCard } from "./queue.js";

const id = Number(param("id"));
const main = document.querySelector("main");
const ui = {};
const state = { event: null, user: null, url: null, retryToken: null, busyUntil: 0, done: false, soldOut: false, suggested: false };

/** Loads the sale; the first load of the page counts as a page view. */
async function load(view = false) {
  const query = view ? `?view=${visitorId()}` : "";
  const { ok, status, body } = await api("GET", `/api/events/${id}${query}`);
  if (!ok) {
    main.replaceChildren(notice("bad", status === 404 ? "No such sale" : "This sale is unavailable",
      status === 404 ? "It may have ended or never existed." : "Please try again in a moment."),
      el("p", {}, el("a", { href: "/" }, "All sales")));
    return false;
  }
  state.event = body;
  return true;
}

function render() {
  const e = state.event;
  ui.badge = el("span", {}, badge(e.phase));
  ui.clock = el("div", { class: "countdown", role: "timer", "aria-live": "off" });
  ui.clockLabel = el("div", { class: "muted" });
  ui.tiers = el("fieldset", {}, el("legend", {}, "Ticket type"),
    e.tiers.map((t, i) => el("label", { style: "font-weight:normal" },
      el("input", { type: "radio", name: "tier", value: t.id, checked: i === 0, style: "width:auto;margin-right:8px" }),
      `${t.name} — ${money(t.price_cents)} `, el("span", { class: "muted", "data-remaining": t.id }, `(${t.remaining} left)`))));
  ui.quantity = el("select", { id: "quantity" },
    Array.from({ length: e.per_order_limit }, (_, i) => el("option", { value: i + 1 }, String(i + 1))));
  ui.buy = el("button", { class: "big", type: "button", disabled: true, onclick: click }, "Buy");
  ui.status = el("div", { "aria-live": "polite", id: "status" });
  ui.code = el("input", { id: "presale-code", autocomplete: "off", spellcheck: "false", placeholder: "XXXX-XXXX-XXX" });
  ui.codeRow = el("div", { hidden: true },
    el("label", { for: "presale-code" }, "Presale code (needed once; it is yours from then on)"), ui.code);
  fill(main,
    el("p", {}, el("a", { href: "/" }, "← All sales")),
    el("h1", {}, e.name), ui.badge,
    el("p", { class: "muted" }, [e.venue, `opens ${when(e.opens_at)}`, `closes ${when(e.closes_at)}`].filter(Boolean).join(" · ")),
    e.description ? el("p", {}, e.description) : null,
    el("section", { class: "card", "aria-label": "Countdown" }, ui.clockLabel, ui.clock),
    isQueue() ? queueCard(e, state.user, (url) => { state.url = url; tick(); }) : null,
    el("section", { class: "card", "aria-label": "Buy" },
      ui.tiers,
      el("label", { for: "quantity" }, `How many (up to ${e.per_order_limit} per order, ${e.per_user_limit} per person)`), ui.quantity,
      ui.codeRow,
      drawNote(e),
      el("p", {}, ui.buy),
      state.user ? null : el("p", {}, el("a", { href: `/login?next=${encodeURIComponent(location.pathname + location.search)}` }, "Log in"), " to buy."),
      ui.status));
}

/** An automatic lottery's opening draw, told before anyone clicks. */
function drawNote(e) {
  const s = e.admission && e.admission.mode === "auto" && e.admission.draw_s;
  return s ? el("p", { class: "muted", id: "draw-note" },
    `Opening draw: everyone who clicks Buy in the first ${s} s after the opening takes a turn in a random order — no need to click at the exact second.`) : null;
}

/** Whether the sale admits through its queue. */
const isQueue = () => state.event.admission && state.event.admission.mode === "queue";

function phaseNow() {
  const e = state.event, now = serverNow();
  if (now >= Date.parse(e.closes_at)) return "closed";
  const p = e.presale;
  const inPresale = p && now >= Date.parse(p.opens_at) && now < Date.parse(p.closes_at);
  if (now < Date.parse(e.opens_at) && !inPresale) return "upcoming";
  if (state.soldOut || e.tiers.every((t) => t.remaining <= 0)) return "sold_out";
  return inPresale ? "presale" : "open";
}

function tick() {
  const e = state.event, now = serverNow(), phase = phaseNow();
  ui.badge.replaceChildren(badge(phase));
  if (phase === "upcoming") {
    ui.clockLabel.textContent = "Opens in";
    ui.clock.textContent = countdown(Date.parse(e.opens_at) - now);
  } else if (phase === "presale") {
    ui.clockLabel.textContent = "Presale for code holders · general sale opens in";
    ui.clock.textContent = countdown(Date.parse(e.opens_at) - now);
  } else if (phase === "open") {
    ui.clockLabel.textContent = "On sale now · closes in";
    ui.clock.textContent = countdown(Date.parse(e.closes_at) - now);
  } else {
    ui.clockLabel.textContent = phase === "closed" ? "The sale has closed" : "Sold out";
    ui.clock.textContent = "";
  }
  if (phase === "sold_out" && !state.suggested && !isQueue()) {
    state.suggested = true;
    soldOut();
  }
  const waiting = now < state.busyUntil;
  const presale = phase === "presale";
  ui.codeRow.hidden = !presale;
  // A presale buys directly, whatever the admission mode.
  const notYourTurn = isQueue() && !state.url && !presale;
  ui.buy.disabled = (phase !== "open" && !presale) || !state.user || waiting || state.done || notYourTurn;
  ui.buy.textContent = phase === "upcoming" ? `Opens in ${countdown(Date.parse(e.opens_at) - now)}`
    : waiting ? `Wait ${countdown(state.busyUntil - now)}`
    : notYourTurn && phase === "open" ? "Wait for your turn in the queue"
    : presale ? "Buy in the presale" : "Buy";
}

async function refresh() {
  if (await load()) {
    for (const t of state.event.tiers) {
      const span = document.querySelector(`[data-remaining="${t.id}"]`);
      if (span) span.textContent = `(${t.remaining} left)`;
    }
  }
}

function show(node) {
  ui.status.replaceChildren(node);
}

/** Counts down in the status line, then runs `then`. */
function later(seconds, text, then) {
  return until(serverNow() + seconds * 1000, text, then);
}

/** Counts down to `at` (server ms) in the status line, then runs `then`. */
function until(at, text, then) {
  const line = el("span", {});
  const update = () => {
    const left = at - serverNow();
    line.textContent = `${text} ${Math.max(0, Math.ceil(left / 1000))} s…`;
    if (left <= 0) { clearInterval(timer); then(); }
  };
  const timer = setInterval(update, 250);
  update();
  return line;
}

function click() {
  state.busyUntil = serverNow() + 5000;
  tick();
  attempt();
}

async function purchaseUrl() {
  if (state.url) return true;
  if (phaseNow() === "presale") {
    const code = ui.code.value.trim();
    const extra = code ? { presale_code: code } : {};
    const { status, body } = await throughDoor(`/api/events/${id}/purchase-url`, id, show, extra);
    if (status === 200) { state.url = body.url; return true; }
    answered(status, body);
    return false;
  }
  if (isQueue()) {
    show(notice("info", "Not your turn yet", "The queue above tells you when it is."));
    return false;
  }
  const { status, body } = await throughDoor(`/api/events/${id}/purchase-url`, id, show);
  if (status === 200) { state.url = body.url; return true; }
  answered(status, body);
  return false;
}

async function attempt() {
  show(notice("info", "Trying…", "Asking for your tickets."));
  if (!(await purchaseUrl())) return;
  const tier = Number(document.querySelector('input[name="tier"]:checked').value);
  const headers = state.retryToken ? { "x-retry-token": state.retryToken } : {};
  const { status, body } = await api("POST", state.url, { tier_id: tier, quantity: Number(ui.quantity.value) }, headers);
  // A 503 or no answer may come after the tickets were held (e.g. Redis's
  // replicas did not confirm in time): a later refusal then checks the orders.
  if (status === 503 || status === 0) state.unsure = true;
  if (state.unsure && (body && (body.error === "sold_out" || body.error === "limit_exceeded"))) {
    const order = await liveOrder();
    if (order) return held(order.id);
  }
  answered(status, body);
}

/** This user's queued, awaiting or paid order of this sale, if any. */
async function liveOrder() {
  const { ok, body } = await api("GET", "/api/me/orders");
  if (!ok) return null;
  return body.orders.find((o) => o.event_id === id && ["queued", "awaiting_payment", "paid"].includes(o.status)) || null;
}

function answered(status, body) {
  const code = body && body.error;
  if (status === 200 || status === 202) return held(body.reservation_id);
  if (code === "not_admitted" && body.retry_at) {
    // The opening draw: a turn to the millisecond.
    state.retryToken = body.retry_token;
    state.busyUntil = Date.parse(body.retry_at);
    return show(notice("info", "You're in the opening draw", "Everyone who clicked in the sale's first seconds takes a turn in a random order; this page tries again at yours. ",
      until(state.busyUntil, "Your turn in", attempt)));
  }
  if (code === "not_admitted") {
    state.retryToken = body.retry_token;
    state.busyUntil = serverNow() + body.retry_after_s * 1000;
    return show(notice("warn", "The sale is busy — you're in the next round",
      later(body.retry_after_s, "Trying again automatically in", attempt)));
  }
  if (code === "duplicate_request") {
    state.busyUntil = serverNow() + body.retry_after_s * 1000;
    return show(notice("warn", "You just tried", `Your previous click is being handled. You can try again in ${body.retry_after_s} s.`));
  }
  if (code === "overloaded" || status === 0) {
    const wait = (body && body.retry_after_s) || 2;
    return show(notice("warn", "Very busy right now", later(wait, "Retrying automatically in", attempt)));
  }
  if (code === "limit_exceeded") {
    state.done = true;
    return show(notice("warn", "You already hold the most you can", body.message + ". ", el("a", { href: "/orders" }, "See my orders")));
  }
  if (code === "sold_out") return soldOut(body.message);
  if (code === "url_expired" && isQueue()) {
    state.url = null;
    return show(notice("warn", "Your turn's link has expired", "The queue above gives you a new one while tickets last."));
  }
  if (code === "url_expired") { state.url = null; return attempt(); }
  if (code === "presale_code_required" || code === "presale_code_taken" || body && body.field === "presale_code") {
    ui.code.focus();
    return show(notice("warn", code === "presale_code_taken" ? "That code is someone else's" : "Presale code needed", body.message));
  }
  if (code === "not_open") return show(notice("info", "Not open yet", `Opens ${when(body.opens_at)}.`));
  if (code === "closed") return show(notice("info", "The sale has closed", ""));
  if (status === 401) {
    return show(notice("warn", "Please log in", "", el("a", { href: `/login?next=${encodeURIComponent(location.pathname + location.search)}` }, "Log in")));
  }
  show(notice("bad", "That did not work", (body && body.message) || `Error ${status}`));
}

async function held(reservation) {
  state.done = true;
  tick();
  show(notice("ok", "You're in — creating your order", "Your tickets are held for you. One moment…"));
  // Long enough to read, then on to the order.
  const shown = Date.now();
  for (let i = 0; i < 60; i++) {
    const { ok, body } = await api("GET", `/api/orders/${reservation}`);
    if (ok && body.status !== "queued") break;
    await new Promise((r) => setTimeout(r, 500));
  }
  await new Promise((r) => setTimeout(r, Math.max(0, 1500 - (Date.now() - shown))));
  location.href = `/order?id=${reservation}`;
}

async function soldOut(text) {
  state.soldOut = true;
  state.suggested = true;
  state.done = true;
  const { ok, body } = await api("GET", "/api/events");
  const others = ok ? body.events.filter((e) => e.id !== id && (e.phase === "open" || e.phase === "upcoming")) : [];
  show(notice("bad", "Sold out", text && text !== "sold out" ? text : "Every ticket of this sale is taken.",
    others.length ? el("div", { id: "suggestions" }, el("p", {}, "Other sales you might like:"),
      el("ul", {}, others.map((e) => el("li", {}, el("a", { href: `/event?id=${e.id}` }, e.name), " ", badge(e.phase)))))
      : el("p", {}, el("a", { href: "/" }, "See all sales"))));
}

async function start() {
  header();
  if (!id) {
    main.replaceChildren(notice("bad", "No sale chosen", ""), el("a", { href: "/" }, "All sales"));
    return;
  }
  const [, user, loaded] = await Promise.all([calibrate(), me(), load(true)]);
  state.user = user;
  if (!loaded) return;
  document.title = `${state.event.name} · rushgate`;
  render();
  tick();
  setInterval(tick, 250);
  setInterval(refresh, 5000);
}

start();
