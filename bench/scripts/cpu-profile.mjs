// Samples the CPU of every worker of a workerd started with --inspector-addr
// (DevTools protocol) for some seconds and prints the functions with the most
// self time. Usage: node bench/scripts/cpu-profile.mjs HOST:PORT SECONDS [TOP]
import WebSocket from "ws";

const [address, seconds = "10", top = "40"] = process.argv.slice(2);
const targets = await (await fetch(`http://${address}/json/list`)).json();

function session(url) {
  const ws = new WebSocket(url);
  let id = 0;
  const waiting = new Map();
  ws.on("message", (data) => {
    const message = JSON.parse(data);
    if (message.id && waiting.has(message.id)) {
      waiting.get(message.id)(message);
      waiting.delete(message.id);
    }
  });
  const opened = new Promise((resolve, reject) => { ws.on("open", resolve); ws.on("error", reject); });
  const send = (method, params = {}) => new Promise((resolve) => {
    id += 1;
    waiting.set(id, resolve);
    ws.send(JSON.stringify({ id, method, params }));
  });
  return { opened, send, close: () => ws.close() };
}

const sessions = targets.map((t) => ({ title: t.title || t.id, s: session(t.webSocketDebuggerUrl) }));
for (const { s } of sessions) {
  await s.opened;
  await s.send("Profiler.enable");
  await s.send("Profiler.setSamplingInterval", { interval: 200 });
  await s.send("Profiler.start");
}
await new Promise((resolve) => setTimeout(resolve, Number(seconds) * 1000));
for (const { title, s } of sessions) {
  const { result } = await s.send("Profiler.stop");
  s.close();
  const profile = result.profile;
  const self = new Map();
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const counts = new Map();
  for (const sample of profile.samples) counts.set(sample, (counts.get(sample) || 0) + 1);
  let total = 0;
  for (const [nodeId, n] of counts) {
    const frame = byId.get(nodeId).callFrame;
    const name = `${frame.functionName || "(anonymous)"} ${frame.url.split("/").pop()}:${frame.lineNumber}`;
    self.set(name, (self.get(name) || 0) + n);
    total += n;
  }
  console.log(`\n== ${title}: ${total} samples`);
  [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(top))
    .forEach(([name, n]) => console.log(`${(100 * n / total).toFixed(1).padStart(6)} %  ${name}`));
}
process.exit(0);
