// Solves a door challenge off the page's thread: a decimal nonce such that
// SHA-256 of challenge + nonce starts with `difficulty` zero bits (docs/API.md,
// "The door"). Reports how many nonces it tried, then the answer.
const encoder = new TextEncoder();
const BATCH = 512;

function zeroBits(bytes) {
  let bits = 0;
  for (const b of bytes) {
    if (b === 0) { bits += 8; continue; }
    return bits + Math.clz32(b) - 24;
  }
  return bits;
}

onmessage = async ({ data: { challenge, difficulty } }) => {
  for (let start = 0; ; start += BATCH) {
    const digests = await Promise.all(Array.from({ length: BATCH }, (_, i) =>
      crypto.subtle.digest("SHA-256", encoder.encode(challenge + (start + i)))));
    const hit = digests.findIndex((d) => zeroBits(new Uint8Array(d)) >= difficulty);
    if (hit >= 0) return postMessage({ nonce: String(start + hit) });
    postMessage({ tried: start + BATCH });
  }
};
