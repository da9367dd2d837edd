// The whole system for browser tests, started by the launcher (rushgate-dev up):
// a private redis-server, a fresh PostgreSQL database, the rushgate-origin
// binary and the built edge under workerd, on free loopback ports. Staff are
// made with the real CLI, customers through the API.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import path from "node:path";
import { chromium } from "playwright-core";

const root = path.resolve(import.meta.dirname, "../..");
const bins = path.join(process.env.CARGO_TARGET_DIR || path.join(root, "target"), "debug");

/** A stack from the launcher; `extra` adds `rushgate-dev up` options. */
export async function startStack(extra = []) {
  const launcher = spawn(path.join(bins, "rushgate-dev"),
    ["up", "--edge", "workerd", "--edge-var", "EVENT_CACHE_TTL_S=1",
      "--origin-env", "RUSHGATE_LEDGER_INTERVAL_MS=500", ...extra],
    { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  const described = await new Promise((resolve, reject) => {
    createInterface({ input: launcher.stdout }).once("line", (line) => resolve(JSON.parse(line)));
    launcher.once("exit", (code) => reject(new Error(`rushgate-dev exited with ${code}`)));
  });
  const env = {
    ...process.env,
    RUSHGATE_REDIS_URL: described.redis_url,
    RUSHGATE_REDIS_PREFIX: described.redis_prefix,
    RUSHGATE_DATABASE_URL: described.database_url,
    RUSHGATE_SIGNING_KEY: described.signing_key,
    RUSHGATE_LOG: "warn",
  };
  const stack = {
    edge: described.edge,
    origin: described.origins[0],
    redisUrl: described.redis_url,
    redisPrefix: described.redis_prefix,
    dir: described.dir,
    async stop() {
      launcher.kill("SIGTERM");
      await new Promise((resolve) => launcher.exitCode !== null ? resolve() : launcher.once("exit", resolve));
    },
  };
  try {
    const bin = path.join(bins, "rushgate-origin");
    stack.admin = await addUser(bin, env, "admin");
    stack.operator = await addUser(bin, env, "operator");
  } catch (e) {
    await stack.stop();
    throw e;
  }
  return stack;
}

async function addUser(bin, env, role) {
  const username = `${role}-${randomBytes(3).toString("hex")}`;
  const password = randomBytes(12).toString("hex");
  const child = spawn(bin, ["user", "add", "--username", username, "--role", role], { env, stdio: ["pipe", "ignore", "pipe"] });
  let errors = "";
  child.stderr.on("data", (chunk) => { errors += chunk; });
  child.stdin.end(`${password}\n`);
  const code = await new Promise((resolve) => child.on("exit", resolve));
  if (code !== 0) throw new Error(`user add failed: ${errors}`);
  return { username, password };
}

/** JSON API calls for test setup. */
export async function call(base, method, path, token, body, headers = {}) {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { "content-type": "application/json" } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  let data = null;
  try { data = JSON.parse(text); } catch { data = text; }
  return { status: r.status, body: data, headers: r.headers };
}

/** A call that the origin may answer `overloaded` (password hashing is
 * bounded: logins and registrations at once beyond it are told to come back),
 * made again when it says. */
async function patiently(...args) {
  for (let tries = 1; ; tries++) {
    const r = await call(...args);
    if (r.status !== 503 || tries >= 30) return r;
    await new Promise((resolve) => setTimeout(resolve, (r.body.retry_after_s || 1) * (500 + Math.random() * 500)));
  }
}

export async function login(base, { username, password }) {
  const r = await patiently(base, "POST", "/api/auth/login", null, { username, password });
  if (r.status !== 200) throw new Error(`login ${username}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.token;
}

/** A nonce that solves a proof-of-work challenge (docs/API.md, "The door"). */
export function solve(challenge, difficulty) {
  for (let n = 0; ; n++) {
    const digest = createHash("sha256").update(challenge + n).digest();
    let bits = 0;
    for (const b of digest) {
      if (b === 0) { bits += 8; continue; }
      bits += Math.clz32(b) - 24;
      break;
    }
    if (bits >= difficulty) return String(n);
  }
}

/** A new customer, registered and signed in. Past the allowance of new accounts
 * from this machine, registering takes a solved challenge, as on the page. */
export async function customer(base) {
  const creds = { username: `c-${randomBytes(4).toString("hex")}`, password: randomBytes(8).toString("hex") };
  let r = await patiently(base, "POST", "/api/auth/register", null, creds);
  if (r.status === 403 && r.body.error === "challenge_required") {
    const { body: c } = await call(base, "GET", "/api/auth/challenge");
    const answer = { ...creds, challenge: c.challenge, nonce: solve(c.challenge, c.difficulty) };
    r = await patiently(base, "POST", "/api/auth/register", null, answer);
  }
  if (r.status !== 201) throw new Error(`register: ${r.status} ${JSON.stringify(r.body)}`);
  return { ...creds, token: await login(base, creds) };
}

const iso = (ms) => new Date(Date.now() + ms).toISOString();

/** An approved sale made through the API by the operator and the admin. */
export async function sale(stack, overrides = {}) {
  const operator = await login(stack.origin, stack.operator);
  const admin = await login(stack.origin, stack.admin);
  const body = {
    name: `Sale ${randomBytes(3).toString("hex")}`, venue: "Test Hall",
    visible_at: iso(-60_000), opens_at: iso(-1000), closes_at: iso(3_600_000),
    per_user_limit: 2, tiers: [{ name: "Standing", price_cents: 4500, stock: 20 }], ...overrides,
  };
  const created = await call(stack.origin, "POST", "/api/admin/events", operator, body);
  if (created.status !== 201) throw new Error(JSON.stringify(created.body));
  const id = created.body.id;
  await call(stack.origin, "POST", `/api/admin/events/${id}/submit`, operator, {});
  const approved = await call(stack.origin, "POST", `/api/admin/events/${id}/approve`, admin, {});
  if (approved.status !== 200) throw new Error(JSON.stringify(approved.body));
  return approved.body;
}

/** Buys through the edge as `token`, retrying lost rounds. */
export async function buy(stack, token, event, quantity = 1) {
  const url = await call(stack.edge, "POST", `/api/events/${event.id}/purchase-url`, token);
  if (url.status !== 200) return url;
  let headers = {};
  for (;;) {
    const r = await call(stack.edge, "POST", url.body.url, token, { tier_id: event.tiers[0].id, quantity }, headers);
    if (r.status !== 429 || r.body.error !== "not_admitted") return r;
    headers = { "x-retry-token": r.body.retry_token };
    await new Promise((resolve) => setTimeout(resolve, r.body.retry_after_s * 1000));
  }
}

/** Debian's Chromium, headless, with nothing reaching out to the network. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}
