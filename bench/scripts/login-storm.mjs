// A storm of logins at one origin (the fetch API of Node.js): `n` at once, while
// /healthz is asked every 10 ms. Prints one JSON line: the logins' answers by
// status, /healthz's latency before the storm (the baseline) and during it, and
// the origin's resident memory before and after (from /proc).
// Usage: node login-storm.mjs ORIGIN PID USERNAME PASSWORD [n, default 500]
import { readFileSync } from "node:fs";

const [origin, pid, username, password, n = "500"] = process.argv.slice(2);
const rssKib = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]);
const login = () => fetch(`${origin}/api/auth/login`, {
  method: "POST", headers: { "content-type": "application/json" },
  body: JSON.stringify({ username, password }),
}).then(async (r) => { await r.arrayBuffer(); return r.status; }, () => 0);

async function healthLatencies(until) {
  const ms = [];
  while (!until()) {
    const started = performance.now();
    const r = await fetch(`${origin}/healthz`);
    await r.arrayBuffer();
    ms.push(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return ms;
}
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];

// Warm: every hasher has hashed once; then the idle baseline of /healthz.
for (let i = 0; i < 8; i++) await login();
let stop = false;
setTimeout(() => { stop = true; }, 2000);
const idle = await healthLatencies(() => stop);
const before = rssKib();
let done = false;
const during = healthLatencies(() => done);
const started = performance.now();
const statuses = await Promise.all(Array.from({ length: Number(n) }, login));
const stormMs = performance.now() - started;
done = true;
const busy = await during;
const after = rssKib();
const count = (s) => statuses.filter((x) => x === s).length;
console.log(JSON.stringify({
  logins: Number(n), ok: count(200), overloaded: count(503), other: statuses.length - count(200) - count(503),
  storm_ms: Math.round(stormMs),
  healthz_idle_p50_ms: +pct(idle, 0.5).toFixed(2), healthz_storm_p50_ms: +pct(busy, 0.5).toFixed(2),
  healthz_storm_max_ms: +Math.max(...busy).toFixed(2),
  rss_before_mib: +(before / 1024).toFixed(1), rss_after_mib: +(after / 1024).toFixed(1),
}));
