// Verifies a queue's published draw in the browser, with the Web Crypto API
// alone: the seed against the commitment the sale showed from its approval,
// every entrant once, the admitted order against the draw numbers, and — for
// the signed-in user or any user id typed in — their own entry and number.
import { api, el, fill, header, me, notice, param } from "./app.js";

const id = Number(param("id"));
const main = document.querySelector("main");

const hex = (bytes) => Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
const unhex = (text) => new Uint8Array(text.match(/../g).map((h) => parseInt(h, 16)));
const utf8 = (text) => new TextEncoder().encode(text);
const sha256 = async (bytes) => hex(await crypto.subtle.digest("SHA-256", bytes));
async function hmac(seedHex, text) {
  const key = await crypto.subtle.importKey("raw", unhex(seedHex), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return hex(await crypto.subtle.sign("HMAC", key, utf8(text)));
}
const isHex32 = (t) => /^[0-9a-f]{64}$/.test(t);

/** The checks of core::draw::verify; resolves to a list of [ok, text]. */
export async function verify(record) {
  const checks = [];
  const seedOk = isHex32(record.seed) && (await sha256(unhex(record.seed))) === record.commitment;
  checks.push([seedOk, seedOk ? "The seed matches the commitment published before anyone joined."
    : "The seed does NOT match the commitment."]);
  const seen = new Set();
  let unique = true;
  for (const e of record.entrants) {
    if (!isHex32(e.entry) || !isHex32(e.number) || seen.has(e.entry)) unique = false;
    seen.add(e.entry);
  }
  checks.push([unique, unique ? `${record.entrants.length} pre-queue entrants, each listed once.` : "An entrant is listed twice or malformed."]);
  const order = [...record.entrants].sort((a, b) => (a.number < b.number ? -1 : a.number > b.number ? 1 : a.entry < b.entry ? -1 : 1))
    .map((e) => e.entry);
  let next = 0, inOrder = true, fault = "";
  const admitted = new Set();
  for (const entry of record.admitted) {
    if (admitted.has(entry)) { inOrder = false; fault = `${entry} admitted twice`; break; }
    admitted.add(entry);
    if (seen.has(entry)) {
      if (order[next] !== entry) { inOrder = false; fault = `${entry} admitted before ${order[next]}, which drew a lower number`; break; }
      next += 1;
    } else if (next < order.length) {
      inOrder = false; fault = `${entry} joined after the opening and was admitted before pre-queue entry ${order[next]}`; break;
    }
  }
  checks.push([inOrder, inOrder ? `${record.admitted.length} admitted in draw order: ${next} from the pre-queue by number, then ${record.admitted.length - next} who joined later, by arrival.`
    : `The admitted order is wrong: ${fault}.`]);
  return { checks, order, admitted };
}

/** A user's own check: their entry, number and place. */
export async function own(record, order, admitted, userId) {
  const entry = await sha256(utf8(String(userId)));
  const listed = record.entrants.find((e) => e.entry === entry);
  if (!listed) {
    return [true, admitted.has(entry) ? `User ${userId} joined after the opening and was admitted.`
      : `User ${userId} is not in the pre-queue (joined after the opening, or not at all).`];
  }
  const number = await hmac(record.seed, String(userId));
  if (number !== listed.number) return [false, `User ${userId}'s listed number is NOT HMAC-SHA256(seed, ${userId}).`];
  const place = order.indexOf(entry) + 1;
  return [true, `User ${userId} drew place ${place} of ${order.length}` + (admitted.has(entry) ? " and was admitted." : " and was not reached before the tickets ran out.")];
}

const line = ([ok, text]) => el("li", { class: ok ? "pass" : "fail" }, el("strong", {}, ok ? "✔ " : "✘ "), text);

async function start() {
  header();
  const [{ ok, status, body }, event, user] = await Promise.all([
    api("GET", `/api/events/${id}/draw`), api("GET", `/api/events/${id}`), me()]);
  const title = event.ok ? `The draw of ${event.body.name}` : "The draw";
  if (!ok) {
    fill(main, el("h1", {}, title),
      notice("info", status === 404 ? "Not published yet" : "Unavailable",
        status === 404 ? "The draw is published when the sale closes." : "Please try again in a moment."),
      event.ok && event.body.draw ? el("p", {}, "Its commitment: ", el("code", { style: "word-break:break-all" }, event.body.draw.commitment)) : null);
    return;
  }
  const { checks, order, admitted } = await verify(body);
  const all = checks.every(([passed]) => passed);
  const result = el("ul", { id: "checks" }, checks.map(line));
  const mine = el("ul", { id: "mine" });
  const input = el("input", { id: "user-id", inputmode: "numeric", value: user ? user.user_id : "" });
  const check = async () => {
    const n = Number(input.value);
    if (Number.isInteger(n) && n > 0) mine.replaceChildren(line(await own(body, order, admitted, n)));
  };
  fill(main,
    el("p", {}, el("a", { href: `/event?id=${id}` }, "← The sale")),
    el("h1", {}, title),
    notice(all ? "ok" : "bad", all ? "The draw verifies" : "The draw does NOT verify", "Checked in this browser, from the published record."),
    result,
    el("section", { class: "card", "aria-label": "Your entry" },
      el("label", { for: "user-id" }, "Check an entry by user id"), input,
      el("p", {}, el("button", { type: "button", onclick: check }, "Check")), mine),
    el("p", { class: "muted" }, "Seed: ", el("code", { style: "word-break:break-all" }, body.seed)));
  if (user) check();
}

start();
