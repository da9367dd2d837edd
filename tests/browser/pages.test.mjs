// The pages in a real browser (Debian's Chromium driven by playwright-core),
// against the whole system through the edge. Screenshots of every page go to
// artifacts/screenshots/.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdirSync } from "node:fs";
import { createServer } from "node:http";
import path from "node:path";
import { after, before, test } from "node:test";

import { buy, call, customer, launchBrowser, login, sale, startStack } from "./stack.mjs";

const shots = path.resolve(import.meta.dirname, "../../artifacts/screenshots");
let stack;
let browser;

before(async () => {
  mkdirSync(shots, { recursive: true });
  stack = await startStack();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

const redisCli = (url, ...args) => execFileSync("redis-cli", ["-u", url, ...args], { encoding: "utf8" });
const shot = (page, name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
const iso = (ms) => new Date(Date.now() + ms).toISOString();

async function loginThroughPage(page, user, next = "/") {
  await page.goto(`${stack.edge}/login?next=${encodeURIComponent(next)}`);
  await page.fill("#login-username", user.username);
  await page.fill("#login-password", user.password);
  await page.click("#login-password >> xpath=ancestor::form//button[@type='submit']");
  await page.waitForURL((url) => !url.pathname.startsWith("/login"));
}

test("a customer waits on the countdown, buys when it opens, pays, and finds the order", { timeout: 120_000 }, async () => {
  const event = await sale(stack, { opens_at: iso(15_000), tiers: [{ name: "Standing", price_cents: 4500, stock: 5 }] });
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  // This phone's clock is an hour fast: the page must count down on server time.
  await context.addInitScript((skew) => {
    const now = Date.now;
    Date.now = () => now() + skew;
  }, 3_600_000);
  const page = await context.newPage();

  await page.goto(`${stack.edge}/`);
  await page.waitForSelector(`a[href="/event?id=${event.id}"]`);
  await shot(page, "01-sales");

  await page.goto(`${stack.edge}/login?next=${encodeURIComponent(`/event?id=${event.id}`)}`);
  await shot(page, "02-login");
  const username = `buyer-${Date.now().toString(36)}`;
  await page.fill("#register-username", username);
  await page.fill("#register-password", "a long enough password");
  await page.click("#register-password >> xpath=ancestor::form//button[@type='submit']");
  await page.waitForURL(/\/event\?id=/);

  const timer = page.locator('[role="timer"]');
  await assert.doesNotReject(timer.waitFor());
  const buyButton = page.locator("main button.big");
  await page.waitForFunction(() => /\d\d:\d\d/.test(document.querySelector('[role="timer"]').textContent));
  const [mm, ss] = (await timer.textContent()).trim().split(":").map(Number);
  const expected = (Date.parse(event.opens_at) - Date.now()) / 1000;
  assert.ok(Math.abs(mm * 60 + ss - expected) <= 3, `countdown ${mm}:${ss}, expected ~${expected.toFixed(1)} s`);
  assert.ok(await buyButton.isDisabled(), "the button waits for the opening");
  await shot(page, "03-event-countdown");

  await page.waitForFunction(() => !document.querySelector("main button.big").disabled, null, { timeout: 40_000 });
  await page.selectOption("#quantity", "2");
  await buyButton.click();
  await page.getByText("You're in — creating your order").waitFor({ timeout: 30_000 });
  await shot(page, "04-event-held");

  await page.waitForURL(/\/order\?id=/, { timeout: 30_000 });
  await page.getByText("Awaiting payment", { exact: true }).waitFor();
  await page.waitForFunction(() => /\d\d:\d\d/.test(document.querySelector("#payment-countdown")?.textContent || ""));
  const [pm] = (await page.textContent("#payment-countdown")).split(":").map(Number);
  assert.ok(pm >= 4 && pm <= 5, "five minutes to pay, on server time");
  await page.getByRole("link", { name: event.name }).waitFor();
  await shot(page, "05-order-awaiting-payment");
  await page.click("#pay");
  await page.getByText("Paid — you're going!").waitFor();
  await shot(page, "06-order-paid");

  await page.goto(`${stack.edge}/orders`);
  const status = page.locator('#orders td[data-status="paid"]');
  await status.waitFor();
  assert.equal(await status.count(), 1);
  assert.equal(await page.locator("#orders").getByRole("link", { name: event.name }).count(), 1);
  await shot(page, "07-my-orders");
  await context.close();
});

test("a second customer meets sold out and is shown other sales", { timeout: 90_000 }, async () => {
  const other = await sale(stack, { name: "The other sale" });
  const scarce = await sale(stack, { name: "One seat only", per_user_limit: 1, tiers: [{ name: "Last seat", price_cents: 9900, stock: 1 }] });
  // The edge serves the list stale while it refreshes: wait until it lists both.
  for (let until = Date.now() + 30_000; ;) {
    const list = await call(stack.edge, "GET", "/api/events");
    const ids = list.body.events.map((e) => e.id);
    if (ids.includes(other.id) && ids.includes(scarce.id)) break;
    assert.ok(Date.now() < until, "the edge never listed the new sales");
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const first = await customer(stack.origin);
  const bought = await buy(stack, first.token, scarce);
  assert.equal(bought.status, 202, JSON.stringify(bought.body));

  const second = await customer(stack.origin);
  const context = await browser.newContext();
  const page = await context.newPage();
  await loginThroughPage(page, second, `/event?id=${scarce.id}`);
  await page.waitForSelector('[role="timer"]', { state: "attached" });
  const button = page.locator("main button.big");
  // The edge may not know yet (its snapshot is up to a second old): then a click finds out.
  const suggestions = page.locator("#suggestions");
  if (!(await suggestions.isVisible()) && !(await button.isDisabled())) await button.click();
  await suggestions.waitFor({ timeout: 30_000 });
  const alert = await page.getByRole("alert").textContent();
  assert.ok(alert.includes("Sold out"), alert);
  const suggested = await suggestions.textContent();
  assert.ok(suggested.includes(other.name), `${other.name} not in: ${suggested}`);
  await shot(page, "08-event-sold-out");
  await context.close();
});

test("an admin approves an operator's event, a customer cannot, and the dashboard shows the sale", { timeout: 120_000 }, async () => {
  const operator = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  await loginThroughPage(operator, stack.operator, "/admin");
  await operator.waitForSelector("text=New event");
  await operator.click("text=New event");
  await operator.fill("#f-name", "Console launch");
  await operator.fill("#f-venue", "Main Hall");
  await operator.evaluate(() => {
    const local = (ms) => { const d = new Date(Date.now() + ms); d.setMinutes(d.getMinutes() - d.getTimezoneOffset()); return d.toISOString().slice(0, 16); };
    document.querySelector("#f-visible_at").value = local(-120_000);
    document.querySelector("#f-opens_at").value = local(-60_000);
  });
  await operator.fill("#f-dedup_window_s", "0");
  await operator.locator(".t-stock").first().fill("10");
  await shot(operator, "09-console-new-event");
  await operator.click("#event-form button[type=submit]");
  const row = operator.locator("#events tr", { hasText: "Console launch" });
  await row.waitFor();
  await row.getByRole("button", { name: "Submit for review" }).click();
  await operator.locator("#events tr", { hasText: "Console launch" }).locator('[data-status="pending_review"]').waitFor();
  await shot(operator, "10-console-operator");
  const operatorToken = await login(stack.origin, stack.operator);
  const events = await call(stack.origin, "GET", "/api/admin/events", operatorToken);
  const event = events.body.events.find((e) => e.name === "Console launch");
  assert.equal(event.challenge, "auto", "the form's door setting defaults to auto");
  assert.deepEqual(event.admission, { rounds: [1] });

  // A customer can neither open the console nor approve through the API.
  const buyer = await customer(stack.origin);
  const refused = await call(stack.edge, "POST", `/api/admin/events/${event.id}/approve`, buyer.token, {});
  assert.equal(refused.status, 403);
  assert.equal(refused.body.error, "forbidden");
  const customerPage = await (await browser.newContext()).newPage();
  await loginThroughPage(customerPage, buyer, "/admin");
  await customerPage.getByText("Not for customers").waitFor();

  const admin = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  await loginThroughPage(admin, stack.admin, "/admin");
  const pending = admin.locator("#events tr", { hasText: "Console launch" });
  await pending.getByRole("button", { name: "Approve" }).click();
  await admin.locator("#events tr", { hasText: "Console launch" }).locator('[data-status="approved"]').waitFor();
  await shot(admin, "11-console-admin-approved");

  // Three buyers through the edge, one of whom pays.
  const approved = (await call(stack.origin, "GET", `/api/events/${event.id}`)).body;
  const buyers = [buyer, await customer(stack.origin), await customer(stack.origin)];
  for (const b of buyers) {
    const r = await buy(stack, b.token, approved);
    assert.equal(r.status, 202, JSON.stringify(r.body));
    b.reservation = r.body.reservation_id;
  }
  for (let i = 0; i < 50; i++) {
    const r = await call(stack.edge, "POST", `/api/orders/${buyers[0].reservation}/pay`, buyers[0].token, {});
    if (r.status === 200) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }

  // Two visits to the sale's page, from two browsers.
  for (const visitor of [customerPage, operator]) await visitor.goto(`${stack.edge}/event?id=${event.id}`);
  await customerPage.waitForSelector('[role="timer"]', { state: "attached" });
  await operator.waitForSelector('[role="timer"]', { state: "attached" });

  await admin.locator("#events tr", { hasText: "Console launch" }).getByRole("link", { name: "Dashboard" }).click();
  await admin.waitForFunction(() => {
    const figure = (name) => Number(document.querySelector(`[data-figure="${name}"] .big`)?.textContent);
    return figure("paid") === 1 && figure("held") === 2 && figure("remaining") === 7
      && figure("page_views") >= 2 && figure("unique_visitors") >= 2;
  }, null, { timeout: 30_000 });
  await admin.waitForFunction(() => document.querySelectorAll("#funnel .bar").length === 7
    && Number(document.querySelector("#funnel .bar .value").textContent) >= 3, null, { timeout: 30_000 });
  await admin.waitForSelector("#chart canvas");
  // A few refreshes make a line, not a dot.
  await admin.waitForFunction(() => Number(document.querySelector("#chart").dataset.samples) >= 3, null, { timeout: 30_000 });
  await admin.waitForSelector('[data-ledger="ok"]', { timeout: 30_000 });
  await shot(admin, "12-dashboard");

  // Units added to Redis by hand are counted twice: the dashboard warns and
  // names the command that takes them out.
  const tier = event.tiers[0].id;
  redisCli(stack.redisUrl, "INCRBY", `${stack.redisPrefix}:{e${event.id}:b0}:stock:t${tier}`, "2");
  const warning = await admin.waitForSelector('[data-ledger="warning"]', { timeout: 30_000 });
  assert.match(await warning.textContent(), new RegExp(`stock adjust --event ${event.id} --tier ${tier} --units -2`));
  await shot(admin, "13-dashboard-ledger-warning");
});

test("pages revalidate, versioned assets are cached for good", async () => {
  const page = await fetch(`${stack.edge}/event`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get("cache-control") || "", /no-cache/);
  const html = await page.text();
  const asset = html.match(/\/assets\/v[0-9a-f]+\/event\.js/)[0];
  const script = await fetch(`${stack.edge}${asset}`);
  assert.equal(script.status, 200);
  assert.match(script.headers.get("cache-control") || "", /immutable/);
});

test("a customer joins a sale's queue, the page shows their place and odds, and the draw verifies in the browser", { timeout: 150_000 }, async () => {
  const event = await sale(stack, {
    name: "Queued concert", per_user_limit: 1, opens_at: iso(12_000), closes_at: iso(40_000),
    admission: { mode: "queue", window_s: 60 }, tiers: [{ name: "Seat", price_cents: 6000, stock: 3 }],
  });
  assert.ok(event.draw && /^[0-9a-f]{64}$/.test(event.draw.commitment), "a queue shows its commitment");
  // Others join before the opening, through the API: the pre-queue has a crowd.
  const others = await Promise.all(Array.from({ length: 12 }, () => customer(stack.origin)));
  for (const other of others) {
    const joined = await call(stack.edge, "POST", `/api/events/${event.id}/queue`, other.token, {});
    assert.equal(joined.status, 200, JSON.stringify(joined.body));
    assert.equal(joined.body.state, "pre_queue");
  }

  const me = await customer(stack.origin);
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  await loginThroughPage(page, me, `/event?id=${event.id}`);
  await page.getByRole("button", { name: "Join the queue" }).click();
  await page.getByText("In the pre-queue", { exact: true }).waitFor();
  assert.ok(await page.locator("main button.big").last().isDisabled(), "no buying before your turn");
  assert.match(await page.locator("#queue").textContent(), /Verify the draw/);
  await shot(page, "20-queue-pre-queue");

  // After the opening the page shows the place the draw gave, as the API does.
  await page.locator("#queue-place").waitFor({ timeout: 40_000 });
  const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join("; ");
  const status = await call(stack.edge, "GET", `/api/events/${event.id}/queue`, null, undefined, { cookie });
  assert.equal(status.status, 200, JSON.stringify(status.body));
  assert.ok(status.body.place >= 1 && status.body.place <= 13, JSON.stringify(status.body));
  assert.equal(await page.locator("#queue-place").textContent(), `#${status.body.place}`);
  assert.ok(await page.locator('#queue [role="progressbar"]').isVisible());
  // Six are admitted first (twice the stock) and nobody buys: the first six
  // may buy, the others wait with their odds shown.
  if (status.body.state === "waiting") {
    assert.match(await page.locator("#queue-chance").textContent(), /(About \d+ in \d+ of the people ahead of you|Nearly everyone ahead of you who wants a ticket) will get/);
    assert.ok(await page.locator("main button.big").last().isDisabled());
  } else {
    assert.equal(status.body.state, "admitted", JSON.stringify(status.body));
    await page.getByText("It's your turn", { exact: true }).waitFor();
    await page.waitForFunction(() => [...document.querySelectorAll("main button.big")].pop().textContent === "Buy");
  }
  await shot(page, `21-queue-${status.body.state}`);

  // After the close, the verify page checks the draw in the browser.
  for (let until = Date.now() + 60_000; ;) {
    const record = await call(stack.edge, "GET", `/api/events/${event.id}/draw`);
    if (record.status === 200) break;
    assert.ok(Date.now() < until, "the draw was never published");
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  await page.goto(`${stack.edge}/draw?id=${event.id}`);
  await page.getByText("The draw verifies").waitFor();
  const checks = await page.locator("#checks").textContent();
  assert.match(checks, /matches the commitment/);
  assert.match(checks, /13 pre-queue entrants/);
  await page.locator("#mine li").waitFor();
  assert.match(await page.locator("#mine").textContent(), /drew place \d+ of 13/);
  await shot(page, "22-draw-verified");
  await context.close();

  // The console shows the queue, and links the record.
  const adminContext = await browser.newContext();
  const admin = await adminContext.newPage();
  await loginThroughPage(admin, stack.admin, "/admin");
  await admin.locator("#events tr", { hasText: "Queued concert" }).getByRole("link", { name: "Dashboard" }).click();
  await admin.waitForFunction(() => document.querySelector('[data-queue="pre_queue"] .big')?.textContent === "13", null, { timeout: 30_000 });
  assert.match(await admin.locator('[data-queue="frontier"]').textContent(), /pre-queue/);
  await admin.locator('[data-queue="draw"]').waitFor();
  await shot(admin, "23-dashboard-queue");
  await adminContext.close();
});

test("a sale behind the door: the page solves the challenge in a Web Worker and joins the queue", { timeout: 90_000 }, async () => {
  const event = await sale(stack, {
    name: "Guarded concert", per_user_limit: 1, opens_at: iso(600_000), closes_at: iso(1_200_000),
    admission: { mode: "queue" }, challenge: "always", tiers: [{ name: "Seat", price_cents: 6000, stock: 3 }],
  });
  assert.equal(event.challenge, "always");
  const me = await customer(stack.origin);
  // Without an answer the door refuses.
  const bare = await call(stack.edge, "POST", `/api/events/${event.id}/queue`, me.token, {});
  assert.equal(bare.status, 403);
  assert.equal(bare.body.error, "challenge_required");

  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  await loginThroughPage(page, me, `/event?id=${event.id}`);
  const asked = page.waitForRequest((r) => r.url().includes(`/api/events/${event.id}/challenge`));
  const solved = page.waitForRequest((r) => r.url().endsWith(`/api/events/${event.id}/queue`) && r.method() === "POST"
    && (r.postData() || "").includes("nonce"));
  await page.getByRole("button", { name: "Join the queue" }).click();
  await asked;
  const answer = JSON.parse((await solved).postData());
  assert.match(answer.nonce, /^(0|[1-9][0-9]*)$/);
  await page.getByText("In the pre-queue", { exact: true }).waitFor();
  await shot(page, "24-door-joined");
  await context.close();
});

test("the console's form makes a queue sale behind the door with its limits, and editing it keeps them", { timeout: 90_000 }, async () => {
  const operator = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  await loginThroughPage(operator, stack.operator, "/admin");
  await operator.click("text=New event");
  await operator.fill("#f-name", "Console queue");
  await operator.fill("#f-admission", "queue 60");
  await operator.selectOption("#f-challenge", "always");
  await operator.fill("#f-account_per_min", "12");
  await operator.locator(".t-stock").first().fill("5");
  await operator.click("#event-form button[type=submit]");
  const row = operator.locator("#events tr", { hasText: "Console queue" });
  await row.waitFor();
  const token = await login(stack.origin, stack.operator);
  const find = async () => (await call(stack.origin, "GET", "/api/admin/events", token)).body.events
    .find((e) => e.name === "Console queue");
  const created = await find();
  assert.deepEqual(created.admission, { mode: "queue", window_s: 60 });
  assert.equal(created.challenge, "always");
  assert.deepEqual(created.velocity, { account_per_min: 12, address_per_min: 6000 });

  // Saved again from the edit form without a change: still a queue behind the door.
  await row.getByRole("link", { name: "Edit" }).click();
  assert.equal(await operator.inputValue("#f-admission"), "queue 60");
  assert.equal(await operator.inputValue("#f-challenge"), "always");
  await operator.click("#event-form button[type=submit]");
  // The list comes back once the save is answered.
  await operator.locator("#events tr", { hasText: "Console queue" }).waitFor();
  const saved = await find();
  assert.deepEqual(saved.admission, { mode: "queue", window_s: 60 });
  assert.equal(saved.challenge, "always");
  assert.equal(saved.velocity.account_per_min, 12);
});

test("a presale: the operator makes codes on the dashboard, a customer buys with one on the sale's page", { timeout: 120_000 }, async () => {
  const event = await sale(stack, {
    name: "Fan presale", per_user_limit: 1, challenge: "off",
    presale: { opens_at: iso(-30_000), closes_at: iso(600_000) }, opens_at: iso(900_000), closes_at: iso(1_800_000),
    tiers: [{ name: "Seat", price_cents: 7000, stock: 5 }],
  });
  assert.equal(event.phase, "presale");
  const operator = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  await loginThroughPage(operator, stack.operator, `/admin#dash/${event.id}`);
  await operator.fill("#p-generate", "3");
  await operator.getByRole("button", { name: "Generate" }).click();
  await operator.getByText("3 codes added · 3 in all").waitFor();
  await shot(operator, "25-console-presale-codes");
  const token = await login(stack.origin, stack.operator);
  const codes = async () => (await call(stack.origin, "GET", `/api/admin/events/${event.id}/presale/codes.csv`, token)).body;
  const code = (await codes()).trim().split("\n")[1].split(",")[0];

  const me = await customer(stack.origin);
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  await loginThroughPage(page, me, `/event?id=${event.id}`);
  const buyButton = page.locator("main button.big");
  await page.getByRole("button", { name: "Buy in the presale" }).click();
  await page.getByText("Presale code needed").waitFor();
  await page.fill("#presale-code", code.toLowerCase());
  await page.waitForFunction(() => !document.querySelector("main button.big").disabled, null, { timeout: 15_000 });
  await buyButton.click();
  await page.getByText("You're in — creating your order").waitFor({ timeout: 30_000 });
  await shot(page, "26-event-presale-held");
  // The export names the account the code is bound to now.
  assert.match(await codes(), new RegExp(`^${code},\\d+,\\d{4}-`, "m"));
  await context.close();
});

test("webhooks: the operator adds an endpoint on the dashboard, it gets an order's changes signed, and the buyer sees them with times", { timeout: 120_000 }, async () => {
  // The organiser's receiver: records each delivery with its signature.
  const got = [];
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => { body += chunk; });
    req.on("end", () => { got.push({ body, signature: req.headers["x-rushgate-signature"] }); res.writeHead(204).end(); });
  });
  await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const hookUrl = `http://127.0.0.1:${receiver.address().port}/hooks`;
  try {
    const event = await sale(stack, { name: "Hooked sale", challenge: "off", tiers: [{ name: "Seat", price_cents: 3000, stock: 5 }] });
    const operator = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    await loginThroughPage(operator, stack.operator, `/admin#dash/${event.id}`);
    await operator.getByText("No endpoints").waitFor();
    await operator.fill("#w-url", hookUrl);
    await operator.uncheck("#w-type-order\\.expired");
    await operator.click("#w-add");
    const secret = (await operator.locator('[data-hook="secret"]').textContent()).trim();
    assert.match(secret, /^[0-9a-f]{64}$/);

    const me = await customer(stack.origin);
    const held = await buy(stack, me.token, event);
    assert.equal(held.status, 202, JSON.stringify(held.body));
    const order = held.body.reservation_id;
    let paid;
    for (let i = 0; i < 100; i++) {
      paid = await call(stack.origin, "POST", `/api/orders/${order}/pay`, me.token, {});
      if (paid.status !== 409) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(paid.status, 200, JSON.stringify(paid.body));

    // Three changes delivered, each signed with the secret shown once.
    const delivered = operator.locator(`[data-endpoint] [data-hook="delivered"]`);
    await operator.waitForFunction(() => document.querySelector('[data-endpoint] [data-hook="delivered"]')?.textContent === "3", null, { timeout: 30_000 });
    assert.equal(await delivered.textContent(), "3");
    await shot(operator, "27-console-webhooks");
    assert.deepEqual(got.map((g) => JSON.parse(g.body).type), ["order.queued", "order.awaiting_payment", "order.paid"]);
    for (const g of got) {
      const [, t, mac] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(g.signature);
      assert.equal(mac, createHmac("sha256", secret).update(`${t}.${g.body}`).digest("hex"));
      assert.equal(JSON.parse(g.body).data.id, order);
    }

    const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const page = await context.newPage();
    await loginThroughPage(page, me, "/orders");
    const history = page.locator('#orders td[data-hook="history"]');
    await history.locator('[data-change="order.paid"]').waitFor();
    assert.deepEqual(await history.locator("[data-change]").evaluateAll((rows) => rows.map((r) => r.dataset.change)), ["order.queued", "order.awaiting_payment", "order.paid"]);
    assert.match(await history.textContent(), /^queued \d.*awaiting payment \d.*paid \d.*$/);
    await shot(page, "28-my-orders-history");
    await context.close();
  } finally {
    receiver.close();
  }
});

test("an automatic lottery's opening draw: the page says so, gets a ticket, counts down to its turn and buys", { timeout: 90_000 }, async () => {
  const event = await sale(stack, {
    name: "Drawn opening", per_user_limit: 1, opens_at: iso(6_000),
    admission: { mode: "auto", draw_s: 4 }, tiers: [{ name: "Seat", price_cents: 3000, stock: 3 }],
  });
  assert.deepEqual(event.admission, { mode: "auto", draw_s: 4 });
  const me = await customer(stack.origin);
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  await loginThroughPage(page, me, `/event?id=${event.id}`);
  await page.locator("#draw-note").getByText("Opening draw", { exact: false }).waitFor();

  // Clicked at the opening: a ticket for the draw's end, not a purchase.
  const buyButton = page.locator("main button.big");
  await page.waitForFunction(() => !document.querySelector("main button.big").disabled, null, { timeout: 20_000 });
  const ticket = page.waitForResponse((r) => r.url().includes(`/buy/${event.id}/`) && r.status() === 429);
  await buyButton.click();
  const body = await (await ticket).json();
  assert.equal(body.error, "not_admitted");
  assert.equal(Date.parse(body.retry_at), Date.parse(event.opens_at) + 4_000, "the ticket is for the draw's end");
  await page.getByText("You're in the opening draw").waitFor();
  await page.getByText(/Your turn in \d+ s/).waitFor();
  await shot(page, "29-event-opening-draw");

  // At its turn the page comes back with the ticket by itself and holds.
  const shown = page.waitForRequest((r) => r.url().includes(`/buy/${event.id}/`) && r.headers()["x-retry-token"] === body.retry_token);
  await shown;
  await page.getByText("You're in — creating your order").waitFor({ timeout: 30_000 });
  await context.close();
});
