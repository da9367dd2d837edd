// D1 (the page's side): how fast the pages' solver (static/assets/v*/door-worker.js)
// hashes in headless Chromium, unthrottled and with the CPU throttled 4× (the
// usual stand-in for a phone; it slows the page's threads, not Web Crypto's).
// Solves 16 challenges of 14 bits each way and prints hashes per second.
// Usage: node bench/scripts/door-solve.mjs [throttling rates, default 1,4]
// (needs `npm ci` and /usr/bin/chromium; door-phone.sh runs it on a share of a core)
import { readdirSync, readFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const root = path.resolve(import.meta.dirname, "../../static/assets");
const dir = readdirSync(root).find((d) => d.startsWith("v"));
const source = readFileSync(path.join(root, dir, "door-worker.js"), "utf8");
const page = path.join(mkdtempSync(path.join(tmpdir(), "door-")), "solve.html");
writeFileSync(page, "<!doctype html><title>solve</title>");

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium" });
try {
  for (const rate of (process.argv[2] || "1,4").split(",").map(Number)) {
    const tab = await browser.newPage();
    const cdp = await tab.context().newCDPSession(tab);
    await cdp.send("Emulation.setCPUThrottlingRate", { rate });
    await tab.goto(`file://${page}`);
    const run = await tab.evaluate(async (src) => {
      const url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
      let hashes = 0;
      const started = performance.now();
      for (let k = 0; k < 16; k++) {
        hashes += 1 + await new Promise((resolve) => {
          const worker = new Worker(url);
          worker.onmessage = ({ data }) => {
            if (data.nonce !== undefined) { worker.terminate(); resolve(Number(data.nonce)); }
          };
          worker.postMessage({ challenge: `challenge-${k}-${Math.random()}`, difficulty: 14 });
        });
      }
      return { hashes, seconds: (performance.now() - started) / 1000 };
    }, source);
    const perS = run.hashes / run.seconds;
    console.log(`CPU throttled ${rate}×: ${Math.round(perS)} hashes/s; expected 16 bits ${(65536 / perS).toFixed(2)} s, 20 bits ${(2 ** 20 / perS).toFixed(1)} s, 24 bits ${(2 ** 24 / perS).toFixed(0)} s`);
    await tab.close();
  }
} finally {
  await browser.close();
}
