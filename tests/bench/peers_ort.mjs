// peers_ort.mjs -- ONNX Runtime in make bench-peers: a timing/fidelity worker
// (the line protocol of tests/bench/peers.py) over the official RAM++ exported
// to ONNX by peers_official.py export-onnx, on ORT's CPU execution provider.
//
//     node tests/bench/peers_ort.mjs MODEL.onnx NODE_MODULES_DIR
//
// onnxruntime-node comes from npm, installed by tests/bench/peers.sh into
// build/peers/ (never committed). ORT fixes its thread count when a session
// is made, so "threads N" makes a new session (intra-op N, inter-op 1,
// sequential, all graph optimisations: ORT's defaults for a CPU model).
// Input: the official preprocessing's tensor (PREFIX.input.f32 written by the
// official worker), so ORT is compared with the official code on the model
// alone; the output named logits is the official fc's.
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import path from 'node:path';

const [model, modules] = process.argv.slice(2);
if (!model || !modules) {
  console.error('usage: node peers_ort.mjs MODEL.onnx NODE_MODULES_DIR');
  process.exit(2);
}
const require = createRequire(path.resolve(modules, 'x.js'));
const ort = require('onnxruntime-node');
const SIZE = 384;

let session = null;
let input = null;

async function makeSession(threads) {
  if (session) await session.release();
  session = null;
  session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
}

async function forward() {
  const out = await session.run({ image: input });
  return out.logits.data;
}

const say = (s) => process.stdout.write(s + '\n');
const t0 = performance.now();
await makeSession(1);
say(`ready ${((performance.now() - t0) / 1000).toFixed(3)} onnxruntime ${ort.env.versions.common}`);

const rl = createInterface({ input: process.stdin, terminal: false });
for await (const line of rl) {
  const cmd = line.trim().split(/\s+/);
  try {
    if (cmd[0] === 'threads') {
      await makeSession(Number(cmd[1]));
      say('ok');
    } else if (cmd[0] === 'load') {
      const b = readFileSync(cmd[1]);
      const f = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
      if (f.length !== 3 * SIZE * SIZE) throw new Error(`${cmd[1]}: ${f.length} floats, not 3x${SIZE}x${SIZE}`);
      input = new ort.Tensor('float32', Float32Array.from(f), [1, 3, SIZE, SIZE]);
      say('ok');
    } else if (cmd[0] === 'run') {
      const t = performance.now();
      await forward();
      say(`time ${((performance.now() - t) / 1000).toFixed(6)}`);
    } else if (cmd[0] === 'probs') {
      const l = await forward();
      writeFileSync(cmd[1] + '.logits.f32', Buffer.from(l.buffer, l.byteOffset, l.byteLength));
      say('ok');
    } else if (cmd[0] === 'quit') {
      break;
    } else if (cmd[0]) {
      say(`error unknown command ${cmd[0]}`);
    }
  } catch (e) {
    say(`error ${String(e.message || e).replace(/\n/g, ' ')}`);
  }
}
if (session) await session.release();
process.exit(0);
