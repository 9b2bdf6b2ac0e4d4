/**
 * The FLOPs a training step of the graph in src/train/model must do per token, counted from the shape: every
 * matmul's forward (2·in·out), its input gradient where the backward passes through it, its weight gradient
 * where the weight trains, and causal attention (half the score matrix) forward and backward (2×).
 */

import type { Stage } from "../src/train/model/params.ts";
import type { TrainShape } from "../src/train/model/shape.ts";

interface Mm {
  size: number;
  trains: boolean;
}

function layerMatmuls(s: TrainShape, l: number, stage: Stage): Mm[] {
  const H = s.hidden, qw = s.heads * s.headDim, kw = s.kvHeads * s.headDim, I = s.intermediate;
  const base = stage !== "flexidepth";
  const mm: Mm[] = [H * qw, H * kw, H * kw, qw * H, H * I, H * I, I * H].map((size) => ({
    size,
    trains: base,
  }));
  if (s.routed.includes(l)) {
    const B = s.bottleneck, A = s.adapter;
    for (const size of [H * B, B * H, H, H * A, H * A, A * H]) mm.push({ size, trains: true });
  }
  return mm;
}

/** FLOPs per token of one training step (forward, backward, no optimizer) at sequence length `seq`. */
export function trainFlopsPerToken(s: TrainShape, stage: Stage, seq: number): number {
  const lowest = stage === "pretrain" ? 0 : stage === "dmtd" ? 0 : Math.min(...s.routed);
  const attention = 2 * 2 * (seq / 2) * s.heads * s.headDim; // QKᵀ and PV over half the context on average
  let flops = 0;
  for (let l = 0; l < s.layers; l++) {
    const backward = l >= lowest;
    for (const m of layerMatmuls(s, l, stage)) {
      flops += 2 * m.size + (backward ? 2 * m.size : 0) + (m.trains ? 2 * m.size : 0);
    }
    flops += attention * (backward ? 3 : 1);
  }
  const head = s.vocab * s.hidden;
  return flops + 2 * head + 2 * head + (stage === "pretrain" ? 2 * head : 0);
}
