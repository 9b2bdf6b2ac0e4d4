/**
 * Weight bytes one decode token reads — the quantity that bounds batch-1 decode speed
 * (tokens/s ≤ memory bandwidth / bytes per token). A kept routed layer reads its router and the whole
 * layer; a skipped one reads only its router, K/V projections and adapter. Used by the benchmark to
 * state the ideal speed-up that skipped layers allow.
 */

import type { GpuMatrix } from "../gpu/matrix.ts";
import type { LayerWeights, ModelWeights } from "./weights.ts";

const sum = (ms: GpuMatrix[]) => ms.reduce((s, m) => s + m.bytes, 0);

/** Bytes of the parts of a layer that only kept tokens read (on a plain layer q is inside qkv). */
function keptOnlyBytes(L: LayerWeights): number {
  return sum([...(L.q ? [L.q] : []), L.o, L.gateUp, L.down]);
}

/**
 * Weight bytes per decode token given the fraction of tokens that run each routed layer
 * (`keepRate[k]` for the k-th routed layer). `fullDepth` = every routed layer runs with no router.
 */
export function weightBytesPerToken(w: ModelWeights, keepRate: number[], fullDepth = false): number {
  let bytes = w.embed.bytes / w.embed.rows + w.lmHead.bytes;
  let k = 0;
  for (const L of w.layers) {
    const always = L.qkv.bytes; // [k; v] (and W_enc) on a routed layer, [q; k; v] on a plain one
    if (!L.router || fullDepth) {
      bytes += always + keptOnlyBytes(L);
      if (L.router) k++;
      continue;
    }
    const R = L.router;
    const p = keepRate[k++] ?? 1;
    // The router: enc (unless inside qkv), then the gate kernel's f32 (head · dec) and router_norm vectors.
    const router = (R.enc?.bytes ?? 0) + 2 * 4 * R.bottleneck;
    bytes += always + router + p * keptOnlyBytes(L) + (1 - p) * sum([R.adapterGateDown, R.adapterUp]);
  }
  return bytes;
}

/** Bytes of the layers [from, to): every matrix a token's pass through them reads. */
function layerBytes(w: ModelWeights, from: number, to: number): number {
  return w.layers.slice(from, to).reduce((s, L) => s + L.qkv.bytes + keptOnlyBytes(L), 0);
}

/**
 * Weight bytes per decode token of a DMTD model at cycle τ: a cycle reads the T thinking layers once (its
 * head's refill block is one many-row pass) and the D decoding layers and the LM head τ times. τ = 1 (or full
 * depth) is every layer for every token.
 */
export function dmtdBytesPerToken(w: ModelWeights, thinkingLayers: number, cycle: number): number {
  const thinking = layerBytes(w, 0, thinkingLayers),
    decoding = layerBytes(w, thinkingLayers, w.layers.length);
  return w.embed.bytes / w.embed.rows + thinking / cycle + decoding + w.lmHead.bytes;
}
