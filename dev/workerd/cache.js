// The Cache API of one Cloudflare location, for the edge's isolates under a
// bare workerd (rushgate-dev): every isolate's `caches.default` talks to this
// service (`cacheApiOutbound`), which keeps the entries in its memory, so the
// isolates share them as those of one location do. workerd's protocol: `GET`
// with the key's URL answers the stored response with `Cf-Cache-Status: HIT`,
// or `MISS`; `PUT` carries the response to store, serialized as HTTP/1.1;
// `PURGE` deletes. Entries live for their `Cache-Control` max-age (s-maxage
// first); `no-store` and `private` ones are not kept. Never deployed.
const entries = new Map();
const decoder = new TextDecoder();
let puts = 0;

function sweep() {
  const now = Date.now();
  for (const [key, entry] of entries) if (entry.expires <= now) entries.delete(key);
}

function maxAge(headers) {
  const control = (headers.get("cache-control") || "").toLowerCase();
  if (/no-store|private/.test(control)) return 0;
  const age = /s-maxage=(\d+)/.exec(control) || /max-age=(\d+)/.exec(control);
  return age ? Number(age[1]) : 0;
}

// Splits a serialized HTTP/1.1 response into status, headers and body.
function parse(bytes) {
  let end = -1;
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) { end = i; break; }
  }
  if (end < 0) return null;
  const [statusLine, ...lines] = decoder.decode(bytes.subarray(0, end)).split("\r\n");
  const status = Number(statusLine.split(" ")[1]);
  const headers = new Headers();
  for (const line of lines) {
    const at = line.indexOf(":");
    if (at > 0) headers.append(line.slice(0, at).trim(), line.slice(at + 1).trim());
  }
  let body = bytes.subarray(end + 4);
  if ((headers.get("transfer-encoding") || "").toLowerCase() === "chunked") {
    const parts = [];
    let at = 0;
    for (;;) {
      let eol = at;
      while (eol + 1 < body.length && !(body[eol] === 13 && body[eol + 1] === 10)) eol++;
      const size = parseInt(decoder.decode(body.subarray(at, eol)), 16);
      if (!size) break;
      parts.push(body.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
    const whole = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let offset = 0;
    for (const p of parts) { whole.set(p, offset); offset += p.length; }
    body = whole;
    headers.delete("transfer-encoding");
  }
  return { status, headers, body: body.slice() };
}

export default {
  async fetch(request) {
    const key = `${request.headers.get("cf-cache-namespaces") || ""} ${request.url}`;
    if (request.method === "PUT") {
      const stored = parse(new Uint8Array(await request.arrayBuffer()));
      const age = stored ? maxAge(stored.headers) : 0;
      if (age > 0) entries.set(key, { ...stored, expires: Date.now() + age * 1000 });
      if (++puts % 1000 === 0) sweep();
      return new Response(null, { status: 204 });
    }
    if (request.method === "PURGE") {
      return new Response(null, { status: entries.delete(key) ? 200 : 404 });
    }
    const entry = entries.get(key);
    if (!entry || entry.expires <= Date.now()) {
      entries.delete(key);
      return new Response(null, { status: 504, headers: { "cf-cache-status": "MISS" } });
    }
    const headers = new Headers(entry.headers);
    headers.set("cf-cache-status", "HIT");
    return new Response(entry.body, { status: entry.status, headers });
  },
};
