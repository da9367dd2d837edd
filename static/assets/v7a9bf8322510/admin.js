// The console for operators and admins: events by status, the create/edit form
// with tiers, the review actions, and a live dashboard per sale.
import { api, badge, el, fill, header, me, notice, when } from "./app.js";

const main = document.querySelector("main");
let user = null;
let stop = () => {};

const STATUS_TEXT = { draft: "Draft", pending_review: "Waiting for review", approved: "Approved", rejected: "Rejected", cancelled: "Cancelled" };

async function route() {
  stop();
  stop = () => {};
  const [view, id] = location.hash.replace(/^#/, "").split("/");
  if (view === "new") return form(null);
  if (view === "edit") return edit(Number(id));
  if (view === "dash") return dashboard(Number(id));
  return list();
}

function problem(title, body) {
  return notice("bad", title, (body && body.message) || "", body && body.field ? ` (${body.field})` : "");
}

async function act(id, action, note) {
  const { ok, body } = await api("POST", `/api/admin/events/${id}/${action}`, note === undefined ? {} : { note });
  if (!ok) main.prepend(problem(`Could not ${action}`, body));
  else list();
}

async function list() {
  const { ok, body } = await api("GET", "/api/admin/events");
  if (!ok) { main.replaceChildren(problem("Events are unavailable", body)); return; }
  const admin = user.role === "admin";
  const rows = body.events.map((e) => {
    const actions = [];
    if (e.status === "draft" || e.status === "rejected") actions.push(el("a", { class: "button secondary", href: `#edit/${e.id}` }, "Edit"));
    if (e.status === "draft") actions.push(el("button", { type: "button", onclick: () => act(e.id, "submit") }, "Submit for review"));
    if (admin && e.status === "pending_review") {
      actions.push(el("button", { type: "button", onclick: () => act(e.id, "approve") }, "Approve"));
      actions.push(el("button", {
        type: "button", class: "danger",
        onclick: () => { const note = prompt("Why is it rejected?"); if (note !== null) act(e.id, "reject", note); },
      }, "Reject"));
    }
    if (e.status === "approved") actions.push(el("a", { class: "button secondary", href: `#dash/${e.id}` }, "Dashboard"));
    if (admin && e.status !== "cancelled") {
      actions.push(el("button", {
        type: "button", class: "secondary",
        onclick: () => { if (confirm(`Cancel "${e.name}"?`)) act(e.id, "cancel"); },
      }, "Cancel"));
    }
    return el("tr", { "data-event": e.id },
      el("td", {}, el("strong", {}, e.name), el("div", { class: "muted" }, `opens ${when(e.opens_at)}`)),
      el("td", { "data-status": e.status }, STATUS_TEXT[e.status] || e.status, e.review_note ? el("div", { class: "muted" }, e.review_note) : null),
      el("td", {}, badge(e.phase)),
      el("td", {}, el("div", { class: "actions" }, actions)));
  });
  main.replaceChildren(
    el("h1", {}, "Console"),
    el("p", {}, el("a", { class: "button", href: "#new" }, "New event")),
    rows.length ? el("table", { id: "events" },
      el("thead", {}, el("tr", {}, ["Event", "Review", "Sale", "Actions"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows)) : el("p", { class: "muted" }, "No events yet."));
}

/** ISO → the value of a datetime-local input (local time). */
function local(iso) {
  const d = new Date(iso);
  d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
  return d.toISOString().slice(0, 16);
}

function input(name, label, attrs = {}) {
  return [el("label", { for: `f-${name}` }, label),
    el("input", { id: `f-${name}`, name, ...attrs }),
    el("div", { class: "field-error", id: `e-${name}`, "aria-live": "polite" })];
}

function tierRow(t = { name: "", price_cents: "", stock: "" }) {
  const i = Math.random().toString(36).slice(2, 8);
  const row = el("div", { class: "row tier" },
    el("div", {}, el("label", { for: `t-name-${i}` }, "Tier name"), el("input", { id: `t-name-${i}`, class: "t-name", value: t.name, required: true })),
    el("div", {}, el("label", { for: `t-price-${i}` }, "Price (€)"),
      el("input", { id: `t-price-${i}`, class: "t-price", type: "number", min: "0", step: "0.01", value: t.price_cents === "" ? "" : t.price_cents / 100, required: true })),
    el("div", {}, el("label", { for: `t-stock-${i}` }, "Stock"), el("input", { id: `t-stock-${i}`, class: "t-stock", type: "number", min: "1", value: t.stock, required: true })),
    el("div", {}, el("label", {}, "\u00a0"), el("button", { type: "button", class: "secondary", onclick: () => row.remove() }, "Remove")));
  return row;
}

async function edit(id) {
  const { ok, body } = await api("GET", `/api/admin/events/${id}`);
  if (!ok) { main.replaceChildren(problem("No such event", body)); return; }
  form(body);
}

function form(event) {
  const e = event || {};
  const hour = 3600 * 1000, now = Date.now();
  const tiers = el("div", { id: "tiers" }, (e.tiers || [{ name: "General admission", price_cents: 5000, stock_total: 100 }])
    .map((t) => tierRow({ name: t.name, price_cents: t.price_cents, stock: t.stock_total })));
  const ad = e.admission;
  const rounds = !ad ? "1" : ad.rounds ? ad.rounds.join(", ") : ad.mode === "queue" ? `queue ${ad.window_s}` : `auto ${ad.draw_s ?? 10}`;
  const door = e.challenge || "auto";
  const doorOptions = [["auto", "auto (under load)"], ["always", "always"], ["off", "off"]]
    .map(([value, words]) => el("option", { value, selected: value === door }, words));
  const status = el("div", { "aria-live": "polite" });
  const f = el("form", { class: "card", id: "event-form" },
    ...input("name", "Name", { required: true, value: e.name || "" }),
    ...input("venue", "Venue", { value: e.venue || "" }),
    el("label", { for: "f-description" }, "Description"),
    el("textarea", { id: "f-description", name: "description", rows: 3 }, e.description || ""),
    el("div", { class: "row" },
      el("div", {}, ...input("visible_at", "Visible from", { type: "datetime-local", required: true, value: local(e.visible_at || new Date(now).toISOString()) })),
      el("div", {}, ...input("opens_at", "Sale opens", { type: "datetime-local", required: true, value: local(e.opens_at || new Date(now + hour).toISOString()) })),
      el("div", {}, ...input("closes_at", "Sale closes", { type: "datetime-local", required: true, value: local(e.closes_at || new Date(now + 3 * hour).toISOString()) }))),
    el("div", { class: "row" },
      el("div", {}, ...input("presale_opens_at", "Presale opens (optional: code holders only)", { type: "datetime-local", value: e.presale ? local(e.presale.opens_at) : "" })),
      el("div", {}, ...input("presale_closes_at", "Presale closes (at the latest when the sale opens)", { type: "datetime-local", value: e.presale ? local(e.presale.closes_at) : "" }))),
    el("div", { class: "field-error", id: "e-presale", "aria-live": "polite" }),
    el("div", { class: "row" },
      el("div", {}, ...input("per_user_limit", "Per person", { type: "number", min: 1, required: true, value: e.per_user_limit || 2 })),
      el("div", {}, ...input("per_order_limit", "Per order", { type: "number", min: 1, value: e.per_order_limit || "" })),
      el("div", {}, ...input("payment_window_s", "Payment window (s)", { type: "number", min: 10, value: e.payment_window_s || 300 })),
      el("div", {}, ...input("dedup_window_s", "Click window (s)", { type: "number", min: 0, value: e.dedup_window_s ?? 10 }))),
    el("div", { class: "row" },
      el("div", {}, ...input("admission", "Admission: rounds (probabilities), auto [opening draw s], or queue [window s]", { value: rounds })),
      el("div", {}, ...input("buckets", "Stock buckets", { type: "number", min: 1, value: e.buckets || 1 })),
      el("div", {}, el("label", { for: "f-challenge" }, "Proof of work at the door"),
        el("select", { id: "f-challenge", name: "challenge" }, doorOptions),
        el("div", { class: "field-error", id: "e-challenge", "aria-live": "polite" }))),
    el("div", { class: "row" },
      el("div", {}, ...input("account_per_min", "Door tries a minute per account", { type: "number", min: 1, max: 1000, value: e.velocity ? e.velocity.account_per_min : 30 })),
      el("div", {}, ...input("address_per_min", "Door tries a minute per address", { type: "number", min: 1, max: 1000000, value: e.velocity ? e.velocity.address_per_min : 6000 }))),
    el("div", { class: "field-error", id: "e-velocity", "aria-live": "polite" }),
    el("fieldset", {}, el("legend", {}, "Tiers"), tiers,
      el("div", { class: "field-error", id: "e-tiers", "aria-live": "polite" }),
      el("button", { type: "button", class: "secondary", onclick: () => tiers.append(tierRow()) }, "Add tier")),
    el("p", { class: "actions" }, el("button", { type: "submit" }, event ? "Save" : "Create draft"),
      el("a", { class: "button secondary", href: "#" }, "Back")),
    status);
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    f.querySelectorAll(".field-error").forEach((n) => (n.textContent = ""));
    const v = (n) => f.querySelector(`[name="${n}"]`).value.trim();
    const num = (n) => (v(n) === "" ? undefined : Number(v(n)));
    const queue = /^queue(?:\s+(\d+))?$/i.exec(v("admission"));
    const auto = /^auto(?:\s+(\d+))?$/i.exec(v("admission"));
    const admission = auto ? { mode: "auto", ...(auto[1] ? { draw_s: Number(auto[1]) } : {}) }
      : queue ? { mode: "queue", ...(queue[1] ? { window_s: Number(queue[1]) } : {}) }
      : { rounds: v("admission").split(",").map((p) => Number(p.trim())) };
    const iso = (n) => (v(n) ? new Date(v(n)).toISOString() : "");
    const presale = v("presale_opens_at") || v("presale_closes_at")
      ? { opens_at: iso("presale_opens_at"), closes_at: iso("presale_closes_at") } : undefined;
    const payload = {
      name: v("name"), venue: v("venue"), description: f.querySelector("#f-description").value,
      visible_at: new Date(v("visible_at")).toISOString(), opens_at: new Date(v("opens_at")).toISOString(),
      closes_at: new Date(v("closes_at")).toISOString(),
      per_user_limit: num("per_user_limit"), per_order_limit: num("per_order_limit"),
      payment_window_s: num("payment_window_s"), dedup_window_s: num("dedup_window_s"),
      admission, buckets: num("buckets"), challenge: v("challenge"), presale,
      velocity: { account_per_min: num("account_per_min"), address_per_min: num("address_per_min") },
      tiers: [...tiers.querySelectorAll(".tier")].map((r) => ({
        name: r.querySelector(".t-name").value.trim(),
        price_cents: Math.round(Number(r.querySelector(".t-price").value) * 100),
        stock: Number(r.querySelector(".t-stock").value),
      })),
    };
    const { ok, body } = event ? await api("PUT", `/api/admin/events/${event.id}`, payload) : await api("POST", "/api/admin/events", payload);
    if (ok) { location.hash = ""; return; }
    const field = body && body.field ? body.field.split(/[.[]/)[0] : null;
    const slot = field && f.querySelector(`#e-${field}`);
    if (slot) { slot.textContent = body.message + (body.field !== field ? ` (${body.field})` : ""); slot.previousElementSibling?.focus?.(); }
    status.replaceChildren(problem("Not saved", body));
  });
  main.replaceChildren(el("h1", {}, event ? `Edit “${e.name}”` : "New event"), f);
}

/** The live dashboard: units over time, the admission funnel, visitors. */
async function dashboard(id) {
  const { ok, body: event } = await api("GET", `/api/admin/events/${id}`);
  if (!ok) { main.replaceChildren(problem("No such event", event)); return; }
  const series = [[], [], [], []];
  const chartBox = el("div", { id: "chart", role: "img", "aria-label": "Remaining, held and paid units over time" });
  const numbers = el("div", { class: "stats", id: "numbers" });
  const funnel = el("div", { class: "bars", id: "funnel", role: "list", "aria-label": "Admission funnel" });
  const tiers = el("div", { id: "tier-table" });
  const ledger = el("div", { id: "ledger" });
  const queue = el("div", { id: "queue-figures" });
  const updated = el("p", { class: "muted", "aria-live": "off" });
  const hooks = webhooksCard(id);
  fill(main,
    el("p", {}, el("a", { href: "#" }, "← Console")),
    el("h1", {}, `Dashboard: ${event.name}`),
    el("p", {}, badge(event.phase), " ", el("a", { href: `/api/admin/events/${id}/orders.csv`, download: true }, "Download winners (CSV)")),
    ledger,
    numbers,
    el("section", { class: "card" }, el("h2", {}, "Units over time"), chartBox),
    event.admission && event.admission.mode === "queue" ? el("section", { class: "card" }, el("h2", {}, "Queue"), queue) : null,
    event.presale ? presaleCard(event) : null,
    hooks.card,
    el("section", { class: "card" }, el("h2", {}, "Admission funnel"), funnel),
    el("section", { class: "card" }, el("h2", {}, "Tiers"), tiers),
    updated);
  let plot = null;
  const draw = () => {
    if (!window.uPlot) return;
    const width = Math.max(280, chartBox.clientWidth || 600);
    if (!plot) {
      plot = new window.uPlot({
        width, height: 260,
        series: [{}, { label: "Remaining", stroke: "#0b5fff", width: 2 },
          { label: "Held (unpaid)", stroke: "#9a6700", width: 2, dash: [6, 4] },
          { label: "Paid", stroke: "#1a7f37", width: 3 }],
        axes: [{}, { label: "units" }],
      }, series, chartBox);
    } else {
      plot.setData(series);
    }
  };
  const poll = async () => {
    const { ok: fine, body: stats } = await api("GET", `/api/admin/events/${id}/stats`);
    if (!fine) { updated.textContent = "Could not refresh the figures; retrying."; return; }
    const sum = (f) => stats.tiers.reduce((n, t) => n + t[f], 0);
    series[0].push(Date.now() / 1000);
    series[1].push(sum("remaining"));
    series[2].push(sum("reserved"));
    series[3].push(sum("paid"));
    chartBox.dataset.samples = String(series[0].length);
    draw();
    const box = (label, value, hook) => el("div", { class: "card", "data-figure": hook }, el("div", { class: "muted" }, label), el("div", { class: "big" }, String(value)));
    numbers.replaceChildren(
      box("Remaining", sum("remaining"), "remaining"), box("Held, unpaid", sum("reserved"), "held"),
      box("Paid", sum("paid"), "paid"), box("Page views", stats.page_views, "page_views"),
      box("Unique visitors", stats.unique_visitors, "unique_visitors"));
    const steps = [["Arrived at the edge", stats.funnel.edge_arrivals], ["Dropped as duplicates", stats.funnel.deduped],
      ["Lost an admission round", stats.funnel.not_admitted], ["Reached the origin", stats.funnel.forwarded],
      ["Rate limited", stats.funnel.rate_limited], ["Sold out answers", stats.funnel.sold_out_rejections],
      ["Reserved", stats.funnel.reserved]];
    const top = Math.max(1, ...steps.map(([, n]) => n));
    funnel.replaceChildren(...steps.map(([label, n]) => el("div", { class: "bar", role: "listitem" },
      el("span", {}, label),
      el("span", { class: "track", "aria-hidden": "true" }, el("span", { class: "fill", style: `display:block;width:${(100 * n) / top}%` })),
      el("span", { class: "value" }, String(n)))));
    tiers.replaceChildren(el("table", {},
      el("thead", {}, el("tr", {}, ["Tier", "Stock", "Remaining", "Held", "Paid", "Expired", "Cancelled"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, stats.tiers.map((t) => el("tr", {},
        el("td", {}, t.name), ...[t.stock_total, t.remaining, t.reserved, t.paid, t.expired, t.cancelled].map((n) => el("td", {}, String(n))))))));
    if (stats.queue) showQueue(queue, stats.queue, id);
    await hooks.refresh();
    // The workers' ledger check: a warning names the command that fixes it.
    const check = stats.ledger;
    ledger.replaceChildren(...(!check ? [] : check.warning
      ? [notice("warn", "Ledger check", " ", el("span", { "data-ledger": "warning" }, check.warning))]
      : [el("p", { class: "muted", "data-ledger": "ok" },
        `Stock and orders add up (checked ${new Date(check.checked_at).toLocaleTimeString()}).`)]));
    updated.textContent = `Updated ${new Date().toLocaleTimeString()} · refreshes every 2 s`;
  };
  await poll();
  const timer = setInterval(poll, 2000);
  const resize = () => plot && plot.setSize({ width: Math.max(280, chartBox.clientWidth), height: 260 });
  window.addEventListener("resize", resize);
  stop = () => { clearInterval(timer); window.removeEventListener("resize", resize); };
}

const EVENT_TYPES = ["order.queued", "order.awaiting_payment", "order.paid", "order.expired", "order.cancelled"];

const typeSaid = (t) => t.replace("order.", "").replace("_", " ");

/** An endpoint's event types in few words. */
function typesSaid(types) {
  const left = EVENT_TYPES.filter((t) => !types.includes(t));
  if (left.length === 0) return "all";
  return left.length < types.length ? `all but ${left.map(typeSaid).join(", ")}` : types.map(typeSaid).join(", ");
}

/** Webhooks: where the event's order changes go (its own endpoints and the
 * deployment's), how their deliveries stand, dead letters with a retry, and a
 * form to add an endpoint (its secret is shown once). */
function webhooksCard(id) {
  const path = `/api/admin/events/${id}/webhooks`;
  const table = el("div", { id: "webhook-table" });
  const dead = el("div", { id: "webhook-dead" });
  const said = el("p", { "aria-live": "polite", id: "webhook-said" });
  const url = el("input", { id: "w-url", type: "url", placeholder: "https://tickets.example.com/hooks", style: "min-width:22em" });
  const secret = el("input", { id: "w-secret", autocomplete: "off", placeholder: "leave empty to generate one" });
  const rate = el("input", { id: "w-rate", type: "number", min: 1, max: 10000, value: 50, style: "width:6em" });
  const boxes = EVENT_TYPES.map((t) => el("input", { type: "checkbox", value: t, checked: true, id: `w-type-${t}` }));
  // Deliveries a second, from the delivered counts of successive refreshes.
  const last = new Map();
  const rateOf = (e) => {
    const now = Date.now();
    const before = last.get(e.id);
    last.set(e.id, { at: now, delivered: e.delivered });
    if (!before || now === before.at) return "–";
    return `${((e.delivered - before.delivered) / ((now - before.at) / 1000)).toFixed(1)}/s`;
  };
  const refresh = async () => {
    const [{ ok, body }, letters] = await Promise.all([api("GET", path), api("GET", `${path}/dead`)]);
    if (!ok) return;
    const age = (s) => (s == null ? "–" : `${Math.round(s)} s`);
    const act = async (method, to, done) => {
      const answer = await api(method, to);
      said.replaceChildren(answer.ok ? done(answer.body) : problem("Not done", answer.body));
      await refresh();
    };
    table.replaceChildren(body.endpoints.length === 0
      ? el("p", { class: "muted" }, "No endpoints: order changes are recorded, and go nowhere yet.")
      : el("div", { class: "scroll" }, el("table", {},
        el("thead", {}, el("tr", {}, ["Endpoint", "Events", "Pace", "Waiting", "Retrying", "Delivered", "Now", "Dead", "Oldest waiting", ""].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, body.endpoints.map((e) => el("tr", { "data-endpoint": e.id },
          el("td", {}, e.url, e.event_id == null ? el("span", { class: "muted" }, " (deployment)") : null, e.enabled ? null : el("span", { class: "muted" }, " (disabled)")),
          el("td", {}, typesSaid(e.types)),
          el("td", {}, `${e.rate_per_s}/s`),
          el("td", { "data-hook": "pending" }, String(e.pending)),
          el("td", { "data-hook": "retrying" }, String(e.retrying)),
          el("td", { "data-hook": "delivered" }, String(e.delivered)),
          el("td", { "data-hook": "rate" }, rateOf(e)),
          el("td", { "data-hook": "dead" }, String(e.dead)),
          el("td", {}, age(e.oldest_pending_s)),
          el("td", {},
            e.dead > 0 ? el("button", { type: "button", "data-retry": e.id, onclick: () => act("POST", `${path}/${e.id}/retry`, (b) => `${b.requeued} dead deliveries sent again.`) }, "Retry dead") : null,
            e.event_id != null && e.enabled ? el("button", { type: "button", class: "secondary", onclick: () => act("DELETE", `${path}/${e.id}`, () => "Endpoint disabled.") }, "Disable") : null)))))));
    const list = letters.ok ? letters.body.dead : [];
    dead.replaceChildren(...(list.length === 0 ? [] : [el("h3", {}, `Dead letters (${list.length})`),
      el("div", { class: "scroll" }, el("table", {}, el("thead", {}, el("tr", {}, ["Endpoint", "Event", "Order", "Tries", "Last error"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, list.slice(0, 20).map((d) => el("tr", {}, el("td", {}, String(d.endpoint_id)), el("td", {}, d.type),
          el("td", {}, el("code", {}, d.order_id.slice(0, 8))), el("td", {}, String(d.attempts)), el("td", {}, d.last_error || "–"))))))]));
  };
  const add = async () => {
    const body = { url: url.value.trim(), rate_per_s: Number(rate.value), types: boxes.filter((b) => b.checked).map((b) => b.value) };
    if (secret.value.trim()) body.secret = secret.value.trim();
    const answer = await api("POST", path, body);
    said.replaceChildren(answer.ok
      ? el("span", {}, "Endpoint added. Its signing secret (shown this once): ", el("code", { "data-hook": "secret" }, answer.body.secret))
      : problem("Not added", answer.body));
    if (answer.ok) { url.value = ""; secret.value = ""; }
    await refresh();
  };
  const card = el("section", { class: "card" }, el("h2", {}, "Webhooks"),
    el("p", { class: "muted" }, "Every order change is sent, signed, to these endpoints at their pace; failures are retried with backoff, then dead-lettered here."),
    table, dead,
    el("h3", {}, "Add an endpoint"),
    el("div", { class: "row" },
      el("div", {}, el("label", { for: "w-url" }, "URL"), url),
      el("div", {}, el("label", { for: "w-secret" }, "Secret (optional)"), secret),
      el("div", {}, el("label", { for: "w-rate" }, "Deliveries a second"), rate)),
    el("fieldset", {}, el("legend", {}, "Events"),
      ...boxes.map((b) => el("label", { class: "check" }, b, typeSaid(b.value)))),
    el("button", { type: "button", id: "w-add", onclick: add }, "Add endpoint"),
    said);
  return { card, refresh };
}

/** A presale's codes: generate, upload as CSV, download with their bindings. */
function presaleCard(event) {
  const path = `/api/admin/events/${event.id}/presale/codes`;
  const said = el("p", { "aria-live": "polite", id: "presale-said" });
  const tell = ({ ok, body }) => said.replaceChildren(ok
    ? el("span", { "data-presale": "total" }, `${body.added} codes added · ${body.total} in all`)
    : problem("Not added", body));
  const count = el("input", { id: "p-generate", type: "number", min: 1, max: 10000, value: 100, style: "width:8em" });
  const file = el("input", { id: "p-upload", type: "file", accept: ".csv,text/csv" });
  file.addEventListener("change", async () => {
    const chosen = file.files[0];
    if (!chosen) return;
    const response = await fetch(`${path}.csv`, { method: "POST", credentials: "same-origin",
      headers: { "content-type": "text/csv" }, body: await chosen.text() });
    tell({ ok: response.ok, body: await response.json() });
    file.value = "";
  });
  return el("section", { class: "card" }, el("h2", {}, "Presale codes"),
    el("p", { class: "muted" }, `Presale ${when(event.presale.opens_at)} – ${when(event.presale.closes_at)}. `,
      "A code binds to the first account that uses it."),
    el("div", { class: "row" },
      el("div", {}, el("label", { for: "p-generate" }, "Generate codes"), count,
        el("button", { type: "button", onclick: async () => tell(await api("POST", path, { generate: Number(count.value) })) }, "Generate")),
      el("div", {}, el("label", { for: "p-upload" }, "Upload codes (CSV, one per line)"), file)),
    el("p", {}, el("a", { href: `${path}.csv`, download: true }, "Download codes with their accounts (CSV)")),
    said);
}

/** The queue's figures: entrants, admitted, converted, the frontier, joins
 * per minute, and the draw record once published. */
function showQueue(node, q, id) {
  const box = (label, value, hook) => el("div", { class: "card", "data-queue": hook }, el("div", { class: "muted" }, label), el("div", { class: "big" }, String(value)));
  const frontier = q.drawn < 1 ? `${(q.drawn * 100).toFixed(1)} % of the pre-queue`
    : `the whole pre-queue, late joiners up to ${new Date(q.late_until_ms).toLocaleTimeString()}`;
  const top = Math.max(1, ...q.joins_per_minute.map(([, n]) => n));
  node.replaceChildren(
    el("div", { class: "stats" }, box("Pre-queue", q.pre_queue, "pre_queue"), box("Joined later", q.late, "late"),
      box("Admitted", q.admitted, "admitted"), box("Bought", q.converted, "converted")),
    el("p", {}, "Frontier: ", el("span", { "data-queue": "frontier" }, frontier),
      q.admitted ? ` · conversion ${Math.round((100 * q.converted) / q.admitted)} %` : ""),
    el("div", { class: "bars", role: "list", "aria-label": "Joins per minute" },
      q.joins_per_minute.map(([minute, n]) => el("div", { class: "bar", role: "listitem" },
        el("span", {}, new Date(minute).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })),
        el("span", { class: "track", "aria-hidden": "true" }, el("span", { class: "fill", style: `display:block;width:${(100 * n) / top}%` })),
        el("span", { class: "value" }, String(n))))),
    q.draw_published ? el("p", {}, el("a", { href: `/draw?id=${id}`, "data-queue": "draw" }, "The published draw record"), " (verified in the browser)")
      : el("p", { class: "muted" }, "The draw record is published when the sale closes."));
}

async function start() {
  header();
  user = await me();
  if (!user) {
    main.replaceChildren(notice("warn", "Please log in", "", el("a", { href: "/login?next=/admin" }, "Log in")));
    return;
  }
  if (user.role !== "operator" && user.role !== "admin") {
    main.replaceChildren(notice("bad", "Not for customers", "The console is for operators and admins."));
    return;
  }
  window.addEventListener("hashchange", route);
  route();
}

start();
