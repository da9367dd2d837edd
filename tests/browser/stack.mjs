// The whole system for browser tests, on free loopback ports: a private
// redis-server, a fresh PostgreSQL database, the rushgate-origin binary and the
// built edge under wrangler dev. Users are made with the real CLI and API.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, openSync, rmSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "../..");

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

function start(name, command, args, options, log) {
  const out = openSync(log, "w");
  const child = spawn(command, args, { ...options, detached: true, stdio: ["pipe", out, out] });
  child.name = name;
  child.log = log;
  return child;
}

function stop(child) {
  try { process.kill(-child.pid, "SIGTERM"); } catch { /* already gone */ }
}

async function ready(url, child, seconds) {
  const until = Date.now() + seconds * 1000;
  for (;;) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch { /* not yet */ }
    if (child.exitCode !== null) throw new Error(`${child.name} exited:\n${readFileSync(child.log, "utf8")}`);
    if (Date.now() > until) throw new Error(`${child.name} not ready in ${seconds}s:\n${readFileSync(child.log, "utf8")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startStack() {
  const dir = mkdtempSync(path.join(tmpdir(), "rushgate-browser-"));
  const children = [];
  const [redisPort, originPort, edgePort, inspectorPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const key = randomBytes(32).toString("hex");
  const base = process.env.DATABASE_URL;
  if (!base) throw new Error("DATABASE_URL is not set (scripts/test.sh sets it)");
  const dbUrl = `${base.slice(0, base.lastIndexOf("/"))}/rg_browser_${randomBytes(6).toString("hex")}`;
  const bin = process.env.RUSHGATE_ORIGIN_BIN ||
    path.join(process.env.CARGO_TARGET_DIR || path.join(root, "target"), "debug", "rushgate-origin");

  children.push(start("redis-server", "redis-server",
    ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], {}, path.join(dir, "redis.log")));
  const env = {
    ...process.env,
    RUSHGATE_BIND: `127.0.0.1:${originPort}`,
    RUSHGATE_REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    RUSHGATE_DATABASE_URL: dbUrl,
    RUSHGATE_SIGNING_KEY: key,
    RUSHGATE_LOG: "warn",
  };
  const origin = start("rushgate-origin", bin, ["serve"], { env }, path.join(dir, "origin.log"));
  children.push(origin);
  const originUrl = `http://127.0.0.1:${originPort}`;
  const edge = start("wrangler dev", path.join(root, "node_modules/.bin/wrangler"), [
    "dev", "--config", "wrangler.toml", "--ip", "127.0.0.1", "--port", String(edgePort),
    "--inspector-port", String(inspectorPort), "--show-interactive-dev-session=false", "--log-level", "warn",
    "--persist-to", path.join(dir, "wrangler"),
    "--var", `ORIGIN_URL:${originUrl}`, "--var", `SIGNING_KEY:${key}`, "--var", "EVENT_CACHE_TTL_S:1",
  ], { cwd: root, env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false" } }, path.join(dir, "wrangler.log"));
  children.push(edge);

  const stack = {
    edge: `http://127.0.0.1:${edgePort}`,
    origin: originUrl,
    dir,
    async stop() {
      children.forEach(stop);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await ready(`${originUrl}/readyz`, origin, 90);
    await ready(`${stack.edge}/api/time`, edge, 120);
    // Staff are made the way an operator bootstraps them: the CLI.
    stack.admin = await addUser(bin, env, "admin", dir);
    stack.operator = await addUser(bin, env, "operator", dir);
  } catch (e) {
    await stack.stop();
    throw e;
  }
  return stack;
}

async function addUser(bin, env, role, dir) {
  const username = `${role}-${randomBytes(3).toString("hex")}`;
  const password = randomBytes(12).toString("hex");
  const child = start("user add", bin, ["user", "add", "--username", username, "--role", role], { env }, path.join(dir, `user-${username}.log`));
  child.stdin.end(`${password}\n`);
  const code = await new Promise((resolve) => child.on("exit", resolve));
  if (code !== 0) throw new Error(`user add failed: ${readFileSync(child.log, "utf8")}`);
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

export async function login(base, { username, password }) {
  const r = await call(base, "POST", "/api/auth/login", null, { username, password });
  if (r.status !== 200) throw new Error(`login ${username}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.token;
}

export async function customer(base) {
  const creds = { username: `c-${randomBytes(4).toString("hex")}`, password: randomBytes(8).toString("hex") };
  const r = await call(base, "POST", "/api/auth/register", null, creds);
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
