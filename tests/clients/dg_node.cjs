// Drive @deepgram/sdk (Node), unmodified, against a gateway. Usage: node dg_node.cjs CONFIG_JSON
// (NODE_PATH pointing at the cached node_modules). Same contract as dg_legacy.py.
const fs = require("fs");
const { DeepgramClient } = require("@deepgram/sdk");

const config = JSON.parse(process.argv[2]);
const out = fs.openSync(config.out, "w");
const record = (event, body) => fs.writeSync(out, JSON.stringify({ event, t: performance.now() / 1000, body }) + "\n");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function pcmOf(path) {
  const wav = fs.readFileSync(path);
  let at = 12;
  while (at < wav.length) {
    const id = wav.toString("ascii", at, at + 4);
    const size = wav.readUInt32LE(at + 4);
    if (id === "data") return wav.subarray(at + 8, at + 8 + size);
    at += 8 + size;
  }
  throw new Error("no data chunk");
}

async function main() {
  const ws = config.url.replace("http://", "ws://");
  const client = new DeepgramClient({ apiKey: "test-key", environment: { base: config.url, production: ws, agent: ws, agentRest: config.url } });
  const options = Object.fromEntries(Object.entries(config.options).map(([k, v]) => [k, String(v)]));
  const socket = await client.listen.v1.connect(options);
  const closed = new Promise((resolve) => socket.on("close", (e) => { record("close", { code: e && e.code }); resolve(); }));
  let endpointed;
  const speechFinal = new Promise((resolve) => { endpointed = resolve; });
  socket.on("message", (m) => {
    record(m && m.type ? m.type : "message", m);
    if (m && m.speech_final) endpointed();
  });
  socket.on("error", (e) => record("error", String(e && e.message)));
  socket.connect();
  await socket.waitForOpen();
  const pcm = pcmOf(config.wav);
  const began = performance.now();
  for (let i = 0; i < pcm.length; i += 3200) {
    socket.sendMedia(pcm.subarray(i, i + 3200));
    const wait = began + ((i + 3200) / 32000) * 1000 - performance.now();
    if (wait > 0) await sleep(wait);
  }
  if (config.finalize) { socket.sendFinalize({ type: "Finalize" }); await sleep(2000); }
  if (config.await_speech_final) await Promise.race([speechFinal, sleep(60000)]);
  socket.sendCloseStream({ type: "CloseStream" });
  await Promise.race([closed, sleep(20000)]);
  record("finished", null);
  fs.closeSync(out);
  process.exit(0);
}

main().catch((e) => { record("failed", String(e && e.stack)); process.exit(1); });
