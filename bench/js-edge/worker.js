// The edge's /buy rejection path written in plain JavaScript, for P3 only: the
// same work as edge/src/buy.rs up to a lost admission round — verify the session
// and purchase tokens (rushgate's token format: postcard claims, HMAC-SHA256 via
// WebCrypto), parse
// the body, consult the cached event snapshot, ask the user's DedupShard Durable
// Object, draw the admission round, sign a retry token, answer 429 — and, like
// the Rust worker, forward an admitted attempt to the origin with a signed
// attestation (X-Rushgate-Admit) and relay its answer. Not part of rushgate;
// never deployed.

const enc = new TextEncoder();
const LABEL = enc.encode("rushgate-token\0");
const KIND = { session: 1, purchase: 2, admission: 3, retry: 4 };

let keyState = null;
async function keys(env) {
  if (keyState) return keyState;
  const raw = hexToBytes(env.SIGNING_KEY);
  const hmac = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
  const id = new Uint8Array(await crypto.subtle.digest("SHA-256", raw)).slice(0, 4);
  keyState = { hmac, id };
  return keyState;
}

function hexToBytes(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

function b64urlDecode(text) {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  const pad = text.length % 4 === 2 ? "==" : text.length % 4 === 3 ? "=" : "";
  const bin = atob(text.replace(/-/g, "+").replace(/_/g, "/") + pad);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function b64urlEncode(bytes) {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function macInput(body) {
  const input = new Uint8Array(LABEL.length + body.length);
  input.set(LABEL);
  input.set(body, LABEL.length);
  return input;
}

/** Verifies a token of `kind`; returns a reader over its claims or null. */
async function verify(env, token, kind) {
  const dot = token.indexOf(".");
  if (dot < 0) return null;
  const body = b64urlDecode(token.slice(0, dot));
  const tag = b64urlDecode(token.slice(dot + 1));
  if (!body || !tag || body.length < 6 || body[0] !== 2 || body[1] !== kind) return null;
  const k = await keys(env);
  for (let i = 0; i < 4; i++) if (body[2 + i] !== k.id[i]) return null;
  const ok = await crypto.subtle.verify("HMAC", k.hmac, tag, macInput(body));
  return ok ? new Claims(body, 6) : null;
}

/** Reads postcard: varints (zigzag for signed integers) and raw bytes. */
class Claims {
  constructor(bytes, at) { this.bytes = bytes; this.at = at; }
  varint() {
    let value = 0n, shift = 0n;
    for (;;) {
      const byte = this.bytes[this.at++];
      value |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return value;
      shift += 7n;
    }
  }
  i64() { const n = this.varint(); return Number((n >> 1n) ^ -(n & 1n)); }
  u32() { return Number(this.varint()); }
  skip(n) { this.at += n; return this; }
}

function varint(out, value) {
  let n = BigInt(value);
  while (n >= 0x80n) { out.push(Number(n & 0x7fn) | 0x80); n >>= 7n; }
  out.push(Number(n));
}
const zigzag = (n) => (BigInt(n) << 1n) ^ (BigInt(n) >> 63n);

async function sign(env, kind, claims) {
  const k = await keys(env);
  const body = new Uint8Array(6 + claims.length);
  body[0] = 2;
  body[1] = kind;
  body.set(k.id, 2);
  body.set(claims, 6);
  const tag = new Uint8Array(await crypto.subtle.sign("HMAC", k.hmac, macInput(body)));
  return b64urlEncode(body) + "." + b64urlEncode(tag);
}

function error(status, code, extra = {}) {
  return Response.json({ error: code, message: code, ...extra }, { status, headers: { "cache-control": "no-store" } });
}

function sessionToken(req) {
  const auth = req.headers.get("authorization");
  if (auth) {
    const [scheme, token] = auth.split(" ");
    return scheme.toLowerCase() === "bearer" ? token : null;
  }
  const cookie = req.headers.get("cookie") || "";
  const found = cookie.split(";").map((p) => p.trim().split("=")).find(([n]) => n === "rushgate_session");
  return found ? found[1] : null;
}

const snapshots = new Map();
async function snapshot(env, eventId, now) {
  const cached = snapshots.get(eventId);
  if (cached && now - cached.at < 2000) return cached.view;
  const response = await fetch(`${env.ORIGIN_URL}/api/events/${eventId}`);
  const view = response.status === 200 ? await response.json() : null;
  snapshots.set(eventId, { view, at: now });
  return view;
}

async function buy(req, env) {
  const now = Date.now();
  const nowS = Math.floor(now / 1000);
  const path = new URL(req.url).pathname;
  const token = sessionToken(req);
  const session = token && (await verify(env, token, KIND.session));
  if (!session) return error(401, "unauthenticated");
  const userId = session.i64();
  session.u32(); // role
  if (session.i64() <= nowS) return error(401, "unauthenticated");
  const [, , eventText, purchaseToken] = path.split("/");
  const eventId = Number(eventText);
  const purchase = purchaseToken && (await verify(env, purchaseToken, KIND.purchase));
  if (!purchase || purchase.i64() !== eventId) return error(403, "bad_signature");
  const owner = purchase.i64();
  if (purchase.i64() <= nowS) return error(403, "url_expired");
  if (owner !== userId) return error(403, "wrong_user");
  let order;
  const body = await req.text();
  try {
    order = JSON.parse(body);
  } catch {
    return error(400, "invalid_input");
  }
  const view = await snapshot(env, eventId, now);
  if (!view) return error(404, "not_found");
  const tier = view.tiers.find((t) => t.id === order.tier_id);
  if (!tier || !(order.quantity >= 1 && order.quantity <= view.per_order_limit)) return error(400, "invalid_input");
  if (tier.remaining <= 0) return error(409, "sold_out");

  if (view.dedup_window_s > 0) {
    const shard = env.DEDUP.get(env.DEDUP.idFromName(`dedup-${userId % 64}`));
    const ask = `https://dedup.internal/gate?u=${userId}&e=${eventId}&w=${view.dedup_window_s}&t=${now}`;
    const answer = await (await shard.fetch(ask)).text();
    if (answer !== "pass") return error(429, "duplicate_request", { retry_after_s: Number(answer.split(" ")[1] || 1) });
  }

  const p = (view.admission.rounds || [1])[0];
  const u = crypto.getRandomValues(new Uint32Array(1))[0] / 4294967296;
  if (u < p) return forward(env, req, path, userId, nowS, body);
  const wait = 2;
  const out = [];
  varint(out, zigzag(eventId));
  varint(out, zigzag(userId));
  varint(out, 1);
  varint(out, zigzag(nowS + wait));
  varint(out, zigzag(nowS + wait + 120));
  out.push(...crypto.getRandomValues(new Uint8Array(16)));
  const claims = new Uint8Array(out);
  const retry = await sign(env, KIND.retry, claims);
  return error(429, "not_admitted", { retry_after_s: wait, retry_token: retry });
}

/** The admitted attempt to the origin, attested, and the origin's answer. */
async function forward(env, req, path, userId, nowS, body) {
  const claims = [];
  for (const text of ["POST", path]) {
    const bytes = enc.encode(text);
    varint(claims, bytes.length);
    claims.push(...bytes);
  }
  varint(claims, zigzag(userId));
  varint(claims, zigzag(nowS));
  const admit = await sign(env, KIND.admission, new Uint8Array(claims));
  const headers = { "content-type": "application/json", "x-rushgate-admit": admit };
  for (const name of ["authorization", "cookie"]) {
    const value = req.headers.get(name);
    if (value) headers[name] = value;
  }
  return fetch(`${env.ORIGIN_URL}${path}`, { method: "POST", headers, body });
}

export default {
  async fetch(req, env) {
    const path = new URL(req.url).pathname;
    if (req.method === "POST" && path.startsWith("/buy/")) return buy(req, env);
    if (path === "/api/time") return Response.json({ now: new Date().toISOString() });
    return error(404, "not_found");
  },
};

export class DedupShard {
  constructor() {
    this.windows = new Map();
  }
  async fetch(req) {
    const q = new URL(req.url).searchParams;
    const now = Number(q.get("t"));
    const key = `${q.get("u")}:${q.get("e")}`;
    const until = this.windows.get(key);
    if (until && until > now) return new Response(`duplicate ${Math.max(1, Math.ceil((until - now) / 1000))}`);
    const window = Number(q.get("w"));
    if (window > 0) this.windows.set(key, now + window * 1000);
    return new Response("pass");
  }
}
