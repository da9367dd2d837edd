// The pages in a real browser (Debian's Chromium driven by playwright-core),
// against the whole system through the edge. Screenshots of every page go to
// artifacts/screenshots/.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";

import { buy, call, customer, login, sale, startStack } from "./stack.mjs";

const shots = path.resolve(import.meta.dirname, "../../artifacts/screenshots");
let stack;
let browser;

before(async () => {
  mkdirSync(shots, { recursive: true });
  stack = await startStack();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
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
