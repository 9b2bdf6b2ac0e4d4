/**
 * A FlexiDepth routed layer (../shared/design/flexidepth-spec.md), per row of the step:
 *   z = input_layernorm(x);  K, V of z into the cache (every row, kept or skipped)
 *   g = sigmoid(W_head · W_dec · tanh(RMSNorm_r(W_enc · z)))
 *   kept (g > threshold):  x += o_proj(attention(rope(q · z)));  x += g · MLP(post_attention_layernorm(x))
 *   skipped:               x += (1 − g) · Adapter(post_attention_layernorm(x))
 * The gate splits the rows on the GPU into a kept and a skipped list with their counts; each branch gathers
 * its rows into a dense block, runs and scatters back, its kernels reading their row count from the gate, so a
 * skipped token reads no attention or MLP weights and the host never waits on a route. A one-row step (decode
 * of one sequence) needs no gathering: whichever branch has the row runs on it in place. W_enc is stacked
 * below [k; v] where it shares their format, so the router costs no matmul of its own.
 */

import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { NO_OP, type StepOp } from "../../ops/op.ts";
import { RouteGate } from "../../ops/route/gate.ts";
import { RowMove } from "../../ops/rows/rows.ts";
import type { LayerWeights, RouterWeights } from "../weights.ts";
import type { LayerBuilder, LayerUnit, RoutingMode } from "../layer_builder.ts";
import { routeWords, type RoutingState } from "../run_state.ts";

/** The rows moved into a branch's block before it runs and out after (none when it runs in place). */
interface Moves {
  keptIn: StepOp[];
  keptOut: StepOp[];
  skippedIn: StepOp[];
  skippedOut: StepOp[];
}

/** Both branches over one block of rows, in the order they run. */
interface Branches extends Moves {
  q: StepOp;
  ropeQ: StepOp;
  attention: StepOp;
  o: StepOp;
  mlpGateUp: StepOp;
  mlpDown: StepOp;
  adapterGateDown: StepOp;
  adapterUp: StepOp;
}

export class FlexiDepthLayer implements LayerUnit {
  readonly gate: RouteGate;
  private readonly inNorm: StepOp;
  private readonly kv: StepOp;
  private readonly kvWrite: StepOp;
  private readonly enc: StepOp;
  private readonly postNorm: StepOp;
  private readonly gathered: Branches;
  private readonly inPlace: Branches;

  constructor(b: LayerBuilder, L: LayerWeights, l: number) {
    const s = b.state, r = s.routing!, R = L.router!, { kvDim } = b;
    const fromTexture = { xTexture: s.xnTexture };
    this.inNorm = b.rowNorm(L.inputNorm);
    this.kv = b.matmul(
      L.qkv,
      s.x,
      s.qkv,
      s.step,
      b.projection(L.inputNorm, l, s.rows, 0, kvDim),
      fromTexture,
    );
    this.kvWrite = b.ropeKv(L, l, s.step, s.rows, s.qkv, { stride: L.qkv.rows, k: 0, v: kvDim });
    this.enc = R.enc ? b.matmul(R.enc, s.x, r.enc, s.step, b.normed(L.inputNorm), fromTexture) : NO_OP;
    this.gate = routeGate(b, L, l, R, r);
    // Only a one-row step's MLP reads it (in place); several rows' branches gather theirs.
    this.postNorm = b.rowNorm(L.postNorm, 1);
    const k = r.kept, sk = r.skipped, H = b.cfg.hiddenSize;
    this.gathered = branches(b, L, l, r.xBlock, r.rowsBlock, null, {
      keptIn: [
        new RowMove(b.kernels, "gather", k, s.x, r.xBlock, H),
        new RowMove(b.kernels, "gather", k, s.rows, r.rowsBlock, 2),
      ],
      keptOut: [new RowMove(b.kernels, "scatter", k, r.xBlock, s.x, H)],
      skippedIn: [new RowMove(b.kernels, "gather", sk, s.x, r.xBlock, H)],
      skippedOut: [new RowMove(b.kernels, "scatter", sk, r.xBlock, s.x, H)],
    });
    this.inPlace = branches(b, L, l, s.x, s.rows, s.xnTexture, {
      keptIn: [],
      keptOut: [],
      skippedIn: [],
      skippedOut: [],
    });
  }

  encode(pass: ComputeRecorder, n: number, routing: RoutingMode): void {
    // Every row: K/V into the cache and the router's bottleneck e (stacked below [k; v], or `enc`).
    this.inNorm.encode(pass, n);
    this.kv.encode(pass, n);
    this.kvWrite.encode(pass, n);
    // The gate: g per row, the kept and skipped row lists (full depth: every row kept with g = 1).
    if (!routing.fullDepth) this.enc.encode(pass, n);
    this.gate.encode(pass, routing.fullDepth);
    const B = n === 1 ? this.inPlace : this.gathered;
    // Kept rows: attention, then the MLP × g.
    encodeAll(B.keptIn, pass, n);
    B.q.encode(pass, n);
    B.ropeQ.encode(pass, n);
    B.attention.encode(pass, n);
    B.o.encode(pass, n);
    // One row: post_attention_layernorm(x) for whichever branch has it (x is unchanged if it was skipped).
    this.postNorm.encode(pass, n);
    B.mlpGateUp.encode(pass, n);
    B.mlpDown.encode(pass, n);
    encodeAll(B.keptOut, pass, n);
    // Skipped rows: the adapter × (1 − g).
    encodeAll(B.skippedIn, pass, n);
    B.adapterGateDown.encode(pass, n);
    B.adapterUp.encode(pass, n);
    encodeAll(B.skippedOut, pass, n);
  }
}

/** Records ops in order (a loop, not a closure per step). */
function encodeAll(ops: StepOp[], pass: ComputeRecorder, n: number): void {
  for (const op of ops) op.encode(pass, n);
}

function routeGate(
  b: LayerBuilder,
  L: LayerWeights,
  l: number,
  R: RouterWeights,
  r: RoutingState,
): RouteGate {
  const s = b.state;
  // e per row: its own buffer, or the columns after [k | v] of the stacked projection's output.
  const e = R.enc
    ? { buffer: r.enc, stride: R.bottleneck, offset: 0 }
    : { buffer: s.qkv, stride: L.qkv.rows, offset: 2 * b.kvDim };
  return new RouteGate(b.kernels, {
    nth: b.cfg.routingLayers.indexOf(l),
    routeWords: routeWords(b.cfg),
    bottleneck: R.bottleneck,
    eps: b.cfg.rmsNormEps,
    dtype: R.adapterUp.dtype,
    workgroup: b.profile.gateWorkgroup,
  }, {
    step: s.step,
    e,
    routes: s.routes,
    kept: r.kept,
    skipped: r.skipped,
    decHead: R.decHead,
    norm: R.norm,
  });
}

/**
 * Both branches reading and updating `block` (its rows' {slot, pos} in `rows`), moved in and out by `moves`;
 * run in place, a one-row step's norms come from `rowTexture` where the model has one.
 */
function branches(
  b: LayerBuilder,
  L: LayerWeights,
  l: number,
  block: GPUBuffer,
  rows: GPUBuffer,
  rowTexture: GPUTexture | null,
  moves: Moves,
): Branches {
  const s = b.state, r = s.routing!, R = L.router!, { qDim } = b;
  const kept = r.kept.step, skipped = r.skipped.step, oneRow = { xTexture: rowTexture };
  return {
    ...moves,
    q: b.matmul(L.q!, block, r.q, kept, b.projection(L.inputNorm, l, rows, qDim, 0), oneRow),
    ropeQ: b.ropeKv(L, l, kept, rows, r.q, { stride: qDim, q: 0 }),
    attention: b.attention(l, kept, rows, r.q, qDim),
    o: b.matmul(L.o, s.att, block, kept, { accumulate: true }),
    mlpGateUp: b.matmul(L.gateUp, block, s.act, kept, b.mlp(L.postNorm), oneRow),
    mlpDown: b.matmul(L.down, s.act, block, kept, { accumulate: true, scaleMode: 1 }, { rowScale: r.kept.g }),
    adapterGateDown: b.matmul(R.adapterGateDown, block, s.act, skipped, b.mlp(L.postNorm), oneRow),
    adapterUp: b.matmul(R.adapterUp, s.act, block, skipped, { accumulate: true, scaleMode: 2 }, {
      rowScale: r.skipped.g,
    }),
  };
}
