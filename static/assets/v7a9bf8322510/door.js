// The door in front of a sale (and of logging in and registering, when many
// tries came from the visitor's network): when a request is refused with
// `challenge_required`, ask for a challenge, solve it in a Web Worker with a
// progress bar, and send the request again with the answer. A slow device can
// take the slow lane instead: 16× less work, then a short wait.
import { api, el, notice, serverNow } from "./app.js";

const asksForProof = (answer) =>
  answer.status === 403 && answer.body && answer.body.error === "challenge_required";

/** `POST path` through the door of sale `eventId`, with `extra` fields in the
 * body (a presale code); `show(node)` shows progress. */
export function throughDoor(path, eventId, show, extra = {}) {
  return withProof(path, `/api/events/${eventId}/challenge`, show, extra);
}

/** `POST path` with `body`, solving a challenge of `challengePath` when asked. */
export async function withProof(path, challengePath, show, body = {}) {
  let answer = await api("POST", path, Object.keys(body).length ? body : undefined);
  for (let round = 0; round < 3 && asksForProof(answer); round++) {
    const solved = await solve(challengePath, show);
    if (!solved.ok) return solved.answer;
    answer = await api("POST", path, { ...body, ...solved.body });
  }
  return answer;
}

async function solve(challengePath, show) {
  for (let lane = "fast"; ; lane = "slow") {
    const got = await api("GET", `${challengePath}${lane === "slow" ? "?lane=slow" : ""}`);
    if (got.status !== 200) return { ok: false, answer: got };
    const { challenge, difficulty, not_before: notBefore } = got.body;
    const expected = 2 ** difficulty;
    const bar = el("progress", { max: "1", value: "0", "aria-label": "checking" });
    const slower = el("button", { type: "button", class: "secondary" }, "Too slow? Wait in the slow lane instead");
    show(notice("info", "Checking that you are a person…",
      "Your device solves a small puzzle; scripts that buy for many accounts pay for each one.",
      bar, lane === "fast" && difficulty > 4 ? slower : null));
    const nonce = await new Promise((resolve) => {
      const worker = new Worker(new URL("./door-worker.js", import.meta.url));
      slower.onclick = () => { worker.terminate(); resolve(null); };
      worker.onmessage = ({ data }) => {
        if (data.nonce !== undefined) { worker.terminate(); resolve(data.nonce); }
        // The expected work is 2^difficulty tries; show it as an easing bar.
        else bar.value = 1 - Math.exp(-data.tried / expected);
      };
      worker.postMessage({ challenge, difficulty });
    });
    if (nonce === null) continue;
    const wait = Date.parse(notBefore) - serverNow();
    if (wait > 0) {
      show(notice("info", "In the slow lane", `Your answer counts in ${Math.ceil(wait / 1000)} s.`));
      await new Promise((resolve) => setTimeout(resolve, wait + 250));
    }
    return { ok: true, body: { challenge, nonce } };
  }
}
