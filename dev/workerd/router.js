// In front of the edge worker when it runs under a bare workerd (rushgate-dev):
// does what wrangler's [assets] does in `wrangler dev` and on Cloudflare —
// static/ first, with content types, clean URLs (/event serves event.html) and
// the rules of static/_headers — and spreads everything else over the worker's
// isolates (EDGE0 … EDGE<n-1>), as Cloudflare's many machines do: `spray` sends
// each request to one at random, `affinity` each client (CF-Connecting-IP) to
// one of its own. Never deployed.
const TYPES = {
  html: "text/html; charset=utf-8", js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8", json: "application/json", svg: "image/svg+xml",
  png: "image/png", ico: "image/x-icon", txt: "text/plain; charset=utf-8",
  map: "application/json", woff2: "font/woff2",
};

// _headers: a path pattern (`*` any rest, `:name` one segment) on its own line,
// then indented `Name: value` lines.
function parseHeaders(text) {
  const rules = [];
  for (const line of text.split("\n")) {
    if (!line.trim() || line.trim().startsWith("#")) continue;
    if (!/^\s/.test(line)) {
      const pattern = line.trim().replace(/[.+?^${}()|[\]\\]/g, "\\$&")
        .replace(/\*/g, ".*").replace(/:[A-Za-z]+/g, "[^/]+");
      rules.push({ match: new RegExp(`^${pattern}$`), headers: [] });
    } else if (rules.length) {
      const [name, ...value] = line.trim().split(":");
      rules[rules.length - 1].headers.push([name.trim(), value.join(":").trim()]);
    }
  }
  return rules;
}

let rules;

/** The isolate for this request. */
function isolate(request, env) {
  const n = Number(env.ISOLATES || 1);
  if (n <= 1) return env.EDGE0;
  const client = request.headers.get("cf-connecting-ip");
  if (env.SPREAD === "affinity" && client) {
    let h = 2166136261;
    for (let i = 0; i < client.length; i++) h = Math.imul(h ^ client.charCodeAt(i), 16777619);
    return env[`EDGE${(h >>> 0) % n}`];
  }
  return env[`EDGE${Math.floor(Math.random() * n)}`];
}

export default {
  async fetch(request, env) {
    rules ??= parseHeaders(env.HEADERS || "");
    const url = new URL(request.url);
    const path = url.pathname;
    // Tests play an isolate at a sale's desk: `/__dev/desk/<event>/<ask>`.
    const desk = /^\/__dev\/desk\/(\d+)\/(\w+)$/.exec(path);
    if (desk) {
      const stub = env.DESK.get(env.DESK.idFromName(`desk-${desk[1]}`));
      return stub.fetch(`https://desk.internal/${desk[2]}${url.search}`);
    }
    if ((request.method === "GET" || request.method === "HEAD") &&
        !path.startsWith("/api/") && !path.startsWith("/buy/") && !path.includes("..")) {
      const last = path.slice(path.lastIndexOf("/") + 1);
      const file = path.endsWith("/") ? `${path}index.html` : last.includes(".") ? path : `${path}.html`;
      if (!file.split("/").some((part) => part.startsWith("_"))) {
        const found = await env.ASSETS.fetch(new URL(file, url));
        if (found.ok && !(found.headers.get("content-type") || "").startsWith("application/json")) {
          const headers = new Headers({
            "content-type": TYPES[file.slice(file.lastIndexOf(".") + 1)] || "application/octet-stream",
          });
          for (const rule of rules) {
            if (rule.match.test(path)) rule.headers.forEach(([name, value]) => headers.set(name, value));
          }
          return new Response(found.body, { headers });
        }
      }
    }
    return isolate(request, env).fetch(request);
  },
};
