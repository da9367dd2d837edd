// What keeps the pages safe and honest in a real browser: the login page never
// sends a visitor to another site and solves the proof of work the origin asks
// of a busy network, the pages carry their security headers and refuse to be
// framed, and a buyer whose first answer was lost after the hold is shown the
// hold, not "Sold out".
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import { call, customer, launchBrowser, sale, startStack } from "./stack.mjs";

const shots = path.resolve(import.meta.dirname, "../../artifacts/screenshots");

let stack;
let browser;

before(async () => {
  mkdirSync(shots, { recursive: true });
  // One new account from this machine before the next costs work.
  stack = await startStack(["--origin-env", "RUSHGATE_REGISTRATIONS_PER_ADDRESS=1"]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

test("after logging in, `next` leads only to a page of this site", { timeout: 60_000 }, async () => {
  const buyer = await customer(stack.origin);
  const context = await browser.newContext();
  const page = await context.newPage();
  const edge = new URL(stack.edge);
  for (const [next, expected] of [
    ["//evil.example/phish", "/"],
    ["/\\evil.example/phish", "/"],
    ["https://evil.example/", "/"],
    ["javascript:alert(1)", "/"],
    ["/orders?x=1", "/orders?x=1"],
  ]) {
    await page.goto(`${stack.edge}/login?next=${encodeURIComponent(next)}`);
    await page.fill("#login-username", buyer.username);
    await page.fill("#login-password", buyer.password);
    await page.click("#login-password >> xpath=ancestor::form//button[@type='submit']");
    await page.waitForURL((url) => !url.pathname.startsWith("/login"));
    const url = new URL(page.url());
    assert.equal(url.host, edge.host, `next=${next} left the site for ${url}`);
    assert.equal(url.pathname + url.search, expected, `next=${next}`);
  }
  await context.close();
});

test("pages carry a content security policy and cannot be framed", { timeout: 60_000 }, async () => {
  for (const page of ["/", "/event", "/admin", "/login"]) {
    const r = await fetch(`${stack.edge}${page}`);
    assert.equal(r.status, 200, page);
    const csp = r.headers.get("content-security-policy") || "";
    assert.match(csp, /frame-ancestors 'none'/, page);
    assert.match(csp, /script-src 'self'/, page);
    assert.equal(r.headers.get("x-frame-options"), "DENY", page);
    assert.equal(r.headers.get("x-content-type-options"), "nosniff", page);
  }
  // A page that frames the console gets nothing in its frame (the load event
  // waits for the frame, refused or not).
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${stack.edge}/api/time`);
  await page.setContent(`<iframe id="f" src="${stack.edge}/admin"></iframe>`, { waitUntil: "load" });
  const frame = await (await page.$("#f")).contentFrame();
  const framed = await frame.evaluate(() => document.querySelector("main") !== null).catch(() => false);
  assert.equal(framed, false, "the console rendered inside another page's frame");
  // The pages themselves run under the policy without tripping it.
  const own = await context.newPage();
  const violations = [];
  own.on("console", (m) => { if (/Content Security Policy/i.test(m.text())) violations.push(m.text()); });
  await own.goto(`${stack.edge}/`);
  await own.waitForSelector("main h1");
  assert.deepEqual(violations, []);
  await context.close();
});

test("a buyer whose first answer is lost after the hold is shown the hold", { timeout: 90_000 }, async () => {
  const event = await sale(stack, { per_user_limit: 1, dedup_window_s: 1, tiers: [{ name: "Last seat", price_cents: 9900, stock: 1 }] });
  const buyer = await customer(stack.origin);
  const context = await browser.newContext();
  await context.addCookies([{ name: "rushgate_session", value: buyer.token, url: stack.edge }]);
  const page = await context.newPage();
  // The first purchase reaches the origin and holds the last seat, but its
  // answer is lost on the way back: the page sees a 503.
  let lost = 0;
  await page.route("**/buy/**", async (route) => {
    if (lost > 0) return route.continue();
    lost += 1;
    const held = await route.fetch();
    assert.equal(held.status(), 202, await held.text());
    await route.fulfill({ status: 503, contentType: "application/json",
      body: JSON.stringify({ error: "overloaded", message: "try again", retry_after_s: 2 }) });
  });
  await page.goto(`${stack.edge}/event?id=${event.id}`);
  const button = page.locator("main button.big");
  await page.waitForFunction(() => {
    const button = document.querySelector("main button.big");
    return button && !button.disabled;
  }, null, { timeout: 30_000 });
  await button.click();
  // The retry meets the sold-out sale (the seat is this buyer's): the page
  // looks at the buyer's orders and shows the hold.
  await page.waitForURL(/\/order\?id=/, { timeout: 30_000 });
  assert.equal(lost, 1);
  const mine = await call(stack.edge, "GET", "/api/me/orders", buyer.token);
  assert.equal(mine.body.orders.length, 1, JSON.stringify(mine.body));
  assert.ok(page.url().includes(mine.body.orders[0].id), page.url());
  await context.close();
});

test("registering from a network past its allowance: the page solves the challenge", { timeout: 60_000 }, async () => {
  await customer(stack.origin); // uses up this machine's allowance
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${stack.edge}/login?next=${encodeURIComponent("/orders")}`);
  const username = `r-${Date.now().toString(36)}`;
  await page.fill("#register-username", username);
  await page.fill("#register-password", "a long enough password");
  await page.click("#register-password >> xpath=ancestor::form//button[@type='submit']");
  await page.waitForURL(/\/orders/, { timeout: 30_000 });
  await page.screenshot({ path: path.join(shots, "30-register-with-proof.png"), fullPage: true });
  const login = await call(stack.origin, "POST", "/api/auth/login", null, { username, password: "a long enough password" });
  assert.equal(login.status, 200, JSON.stringify(login.body));
  await context.close();
});
