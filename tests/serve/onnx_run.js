#!/usr/bin/env node
// tests/serve/onnx_run.js — runs an ONNX file in ONNX Runtime (npm onnxruntime-node,
// installed into tools/onnx/ by scripts/install-deps.sh) on raw float32 inputs, for the
// export tests (tests/serve/test_onnx.c, tests/cli/test_export.sh).
//
// usage: node onnx_run.js MODEL.onnx INPUT.f32 N OUT_PREFIX [BATCHES]
//   INPUT.f32   N samples of the graph's one input, little-endian float32, C order
//   BATCHES     comma-separated batch sizes adding up to N (default N): the runs go
//               through the dynamic batch dimension with each size in turn
// Prints one JSON line: {"ort": version, "inputs": [{name, type, shape}], "outputs":
// [...], "batches": [...]} with the names, types and shapes ONNX Runtime read from the
// file, and writes OUT_PREFIX.NAME.f32 (all N samples) for every output NAME.
// Exit status 3 when onnxruntime-node cannot be loaded, 2 on any other failure.
'use strict';
const fs = require('fs');
const path = require('path');

const root = process.env.BF_SOURCE_DIR || path.resolve(__dirname, '..', '..');
let ort;
try {
  ort = require(path.join(root, 'tools', 'onnx', 'node_modules', 'onnxruntime-node'));
} catch (e) {
  console.error(`onnx_run: onnxruntime-node is not installed under ${root}/tools/onnx ` +
                `(run scripts/install-deps.sh): ${e.message.split('\n')[0]}`);
  process.exit(3);
}

async function main() {
  const [model, input, nText, outPrefix, batchText] = process.argv.slice(2);
  if (!outPrefix) throw new Error('usage: onnx_run.js MODEL.onnx INPUT.f32 N OUT_PREFIX [BATCHES]');
  const n = Number(nText);
  const batches = (batchText || nText).split(',').map(Number);
  if (!(n >= 1) || batches.some((b) => !(b >= 1)) || batches.reduce((a, b) => a + b, 0) !== n)
    throw new Error(`batches ${batches} do not add up to ${n}`);

  // two threads: the test machines are shared (docs/CONTRIBUTING.md)
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'], intraOpNumThreads: 2, interOpNumThreads: 1,
  });
  const describe = (m) => ({ name: m.name, type: m.type, shape: m.shape });
  const info = {
    ort: ort.env.versions ? ort.env.versions.node : 'unknown',
    inputs: session.inputMetadata.map(describe),
    outputs: session.outputMetadata.map(describe),
    batches,
  };
  if (info.inputs.length !== 1) throw new Error(`${info.inputs.length} graph inputs, expected 1`);
  const inShape = info.inputs[0].shape;
  const perSample = inShape.slice(1).reduce((a, b) => a * b, 1);
  const bytes = fs.readFileSync(input);
  if (bytes.length !== n * perSample * 4)
    throw new Error(`${input}: ${bytes.length} bytes, expected ${n} x ${perSample} float32`);
  const x = new Float32Array(bytes.buffer, bytes.byteOffset, n * perSample);

  const outs = Object.fromEntries(session.outputNames.map((name) => [name, []]));
  let first = 0;
  for (const b of batches) {
    const feed = {};
    feed[session.inputNames[0]] = new ort.Tensor('float32',
      x.slice(first * perSample, (first + b) * perSample), [b, ...inShape.slice(1)]);
    const result = await session.run(feed);
    for (const name of session.outputNames) {
      const t = result[name];
      if (t.dims[0] !== b) throw new Error(`output ${name}: batch ${t.dims[0]}, expected ${b}`);
      outs[name].push(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    }
    first += b;
  }
  for (const name of session.outputNames)
    fs.writeFileSync(`${outPrefix}.${name.replace(/[^A-Za-z0-9_.-]/g, '_')}.f32`,
                     Buffer.concat(outs[name]));
  console.log(JSON.stringify(info));
}

main().catch((e) => {
  console.error(`onnx_run: ${e.message}`);
  process.exit(2);
});
