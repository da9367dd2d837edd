// The queue of a sale in queue mode: join, then place, progress and an honest
// chance, polled at the pace the edge asks for (with jitter); when admitted,
// the purchase URL goes to the buy button for the user's window.
import { api, countdown, el, fill, notice, serverNow } from "./app.js";
import { throughDoor } from "./door.js";

/** Words for a chance between 0 and 1: "about 1 in 4". */
export function chanceWords(chance) {
  if (chance >= 0.95) return "Nearly everyone ahead of you who wants a ticket will get one";
  if (chance <= 0) return "No tickets are left for the people ahead of you";
  const share = chance >= 0.5 ? `${Math.round(chance * 10)} in 10` : `1 in ${Math.round(1 / chance)}`;
  return `About ${share} of the people ahead of you will get a ticket`;
}

const STATES = {
  pre_queue: "In the pre-queue",
  waiting: "Waiting in line",
  admitted: "It's your turn",
  sold_out: "Sold out",
  closed: "The sale has closed",
};

/**
 * The queue card of sale `event` for `user`; calls `admitted(url, expiresAt)`
 * when it is the user's turn (again on every poll while it lasts) and
 * `admitted(null)` when it is not.
 */
export function queueCard(event, user, admitted) {
  const card = el("section", { class: "card", "aria-label": "Queue", id: "queue" });
  const body = el("div", { "aria-live": "polite" });
  const draw = event.draw
    ? el("p", { class: "muted" }, "The draw is fixed: its seed's SHA-256 is ",
      el("code", { style: "word-break:break-all" }, event.draw.commitment), ". ",
      el("a", { href: `/draw?id=${event.id}` }, "Verify the draw"), " once the sale closes.")
    : null;
  let timer = null;

  const join = el("button", { class: "big", type: "button", onclick: joinNow }, "Join the queue");
  function askToJoin() {
    fill(body,
      el("p", {}, "Everyone who joins before the opening gets a random place when the sale opens: ",
        "joining early gives no advantage, and nobody can jump the line. Who joins later queues behind them."),
      user ? join : el("p", {}, el("a", { href: `/login?next=${encodeURIComponent(location.pathname + location.search)}` }, "Log in"), " to join the queue."));
  }

  async function joinNow() {
    join.disabled = true;
    const { status, body: answer } = await throughDoor(`/api/events/${event.id}/queue`, event.id,
      (node) => fill(body, node));
    join.disabled = false;
    if (status === 200) return show(answer);
    fill(body, notice(status === 409 || status === 410 ? "info" : "bad",
      answer && answer.error === "sold_out" ? "Sold out" : "Could not join",
      (answer && answer.message) || `Error ${status}`), user ? join : null);
  }

  async function poll() {
    const { status, body: answer } = await api("GET", `/api/events/${event.id}/queue`);
    if (status === 200) return show(answer);
    if (status === 400) return askToJoin(); // no pass yet
    const wait = (answer && answer.retry_after_s) || 5;
    schedule(wait);
  }

  function schedule(seconds) {
    clearTimeout(timer);
    // Up to a quarter more, so that a crowd's polls spread out.
    timer = setTimeout(poll, seconds * 1000 * (1 + Math.random() * 0.25));
  }

  function show(q) {
    const progress = q.place > 0 ? Math.min(1, q.admitted / q.place) : 0;
    const rows = [];
    if (q.state === "pre_queue") {
      rows.push(el("p", {}, q.entrants === 1 ? "So far you are the only one in the pre-queue. "
        : `${q.entrants.toLocaleString()} people are in the pre-queue so far, you among them. `,
        "Your place is drawn when the sale opens."));
    } else if (q.place > 0) {
      rows.push(el("p", { class: "countdown", id: "queue-place" }, `#${q.place.toLocaleString()}`),
        el("p", { class: "muted" }, `of ${q.entrants.toLocaleString()} in line · ${q.ahead.toLocaleString()} ahead of you not yet admitted · ${q.remaining} tickets left`),
        el("div", { class: "bars" }, el("div", { class: "bar" }, el("span", {}, "Progress"),
          el("div", { class: "track", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": Math.round(progress * 100) },
            el("div", { class: "fill", style: `width:${(progress * 100).toFixed(1)}%` })),
          el("span", { class: "value" }, `${Math.round(progress * 100)} %`))));
    }
    if (q.state === "waiting") {
      rows.push(el("p", { id: "queue-chance" }, `${chanceWords(q.chance)}.`),
        el("p", { class: "muted" }, q.estimated_wait_s != null ? `Estimated wait: ${countdown(q.estimated_wait_s * 1000)}` : "Waiting for the line to move."));
    }
    const kinds = { admitted: "ok", sold_out: "bad", closed: "info" };
    const texts = {
      pre_queue: "Keep this page open; it checks for you.",
      waiting: "Keep this page open; it checks for you.",
      admitted: q.expires_at ? `Buy below before ${new Date(q.expires_at).toLocaleTimeString()}.` : "Buy below.",
      sold_out: "Everything is taken for now. If tickets come back (unpaid orders), the next in line gets them: this page keeps checking.",
      closed: "",
    };
    fill(body, notice(kinds[q.state] || "info", STATES[q.state] || q.state, texts[q.state]), rows);
    admitted(q.state === "admitted" ? q.purchase_url : null, q.expires_at);
    if (q.state !== "closed") schedule(q.poll_after_s || 5);
  }

  fill(card, el("h2", {}, "Queue"), body, draw);
  poll();
  return card;
}

/** Seconds left of the admitted window, for the buy button. */
export function windowLeft(expiresAt) {
  return expiresAt ? Math.max(0, Date.parse(expiresAt) - serverNow()) : 0;
}
