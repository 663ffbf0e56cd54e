#!/usr/bin/env node
// tests/serve/onnx_metrics.js — the test metrics of ONNX Runtime's outputs (written by
// onnx_run.js) on a test set dumped raw with h5dump, computed as braggflow computes them
// (bf_peak_errors_of, bf_structure_metrics), for tests/cli/test_export.sh.
//
// usage: node onnx_metrics.js peaks PLOC_A.f32 PLOC_B.f32 CENTRE.f64 S
//   ploc (n, 2) = (col, row) / S of run A (the float16 file) and run B (float32);
//   centre (n, 2) true (row, col), float64. Prints
//   "mean M p95 P maxdiff D": A's error in pixels and max |A - B|.
// usage: node onnx_metrics.js structure LOGITS_A REG_A LOGITS_B REG_B LABEL.i32 CELL.f64 C
//            "OFFSET0 OFFSET1 OFFSET2" "SCALE0 SCALE1 SCALE2"
//   Prints "accuracy A mae_a X mae_c Y mae_alpha Z maxdiff_logits D maxdiff_regression E".
'use strict';
const fs = require('fs');

// a raw little-endian file as a typed array (copied: Node's Buffer may not be aligned)
const typed = (Type) => (p) => {
  const b = fs.readFileSync(p);
  return new Type(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
};
const f32 = typed(Float32Array), f64 = typed(Float64Array), i32 = typed(Int32Array);
const maxdiff = (a, b) => {
  if (a.length !== b.length) throw new Error(`lengths ${a.length} and ${b.length}`);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
};
// numpy's default percentile: linear between order statistics at q (n - 1)
const percentile = (sorted, q) => {
  const pos = q * (sorted.length - 1), lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
};

function peaks([a, b, centreFile, sText]) {
  const pa = f32(a), pb = f32(b), c = f64(centreFile), S = Number(sText), n = c.length / 2;
  if (pa.length !== 2 * n) throw new Error(`${a}: ${pa.length / 2} outputs for ${n} centres`);
  const d = [];
  for (let i = 0; i < n; i++)
    d.push(Math.hypot(pa[2 * i + 1] * S - c[2 * i], pa[2 * i] * S - c[2 * i + 1]));
  const mean = d.reduce((s, x) => s + x, 0) / n;
  d.sort((x, y) => x - y);
  console.log(`mean ${mean.toFixed(9)} p95 ${percentile(d, 0.95).toFixed(9)} ` +
              `maxdiff ${maxdiff(pa, pb).toExponential(6)}`);
}

function structure([la, ra, lb, rb, labelFile, cellFile, cText, offText, scText]) {
  const logits = f32(la), reg = f32(ra), labels = i32(labelFile), cells = f64(cellFile);
  const C = Number(cText), n = labels.length;
  const off = offText.split(/\s+/).map(Number), sc = scText.split(/\s+/).map(Number);
  if (logits.length !== n * C || reg.length !== n * 4) throw new Error('output sizes');
  let correct = 0;
  const mae = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < C; c++) if (logits[i * C + c] > logits[i * C + best]) best = c;
    correct += best === labels[i];
    // targets as bf_structure_inputs: a, c, alpha = cell[0], cell[2], cell[3], scaled,
    // rounded to float32
    const phys = [cells[6 * i], cells[6 * i + 2], cells[6 * i + 3]];
    for (let k = 0; k < 3; k++) {
      const y = Math.fround((phys[k] - off[k]) / sc[k]);
      mae[k] += Math.abs(reg[4 * i + k] - y) * sc[k];
    }
  }
  console.log(`accuracy ${(correct / n).toFixed(9)} mae_a ${(mae[0] / n).toFixed(9)} ` +
              `mae_c ${(mae[1] / n).toFixed(9)} mae_alpha ${(mae[2] / n).toFixed(9)} ` +
              `maxdiff_logits ${maxdiff(logits, f32(lb)).toExponential(6)} ` +
              `maxdiff_regression ${maxdiff(reg, f32(rb)).toExponential(6)}`);
}

try {
  const [mode, ...args] = process.argv.slice(2);
  if (mode === 'peaks') peaks(args);
  else if (mode === 'structure') structure(args);
  else throw new Error('usage: onnx_metrics.js peaks|structure ...');
} catch (e) {
  console.error(`onnx_metrics: ${e.message}`);
  process.exit(2);
}
