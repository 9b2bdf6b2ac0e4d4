/**
 * The training graph of one model, top to bottom like its equations:
 *   x_0 = embed(tokens)
 *   x_{l+1} = layer_l(x_l)            (routed layers: FlexiDepth's; DMTD: x_T = e + m_p · x_T before decoding)
 *   logits = lm_head(norm(x_L));  L = CE(logits, targets) + α · L_skip
 * `encodeStep` records the forward and the backward of one micro-batch (gradients added to the parameters'),
 * `encodeForward` the forward and the loss alone (validation). Everything is allocated at construction.
 */

import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { AddInto } from "../../ops/elementwise/add.ts";
import { RowMask } from "../../ops/elementwise/row_scale.ts";
import { EmbeddingTrain } from "../../ops/embed/train.ts";
import { CrossEntropy } from "../../ops/loss/cross_entropy.ts";
import { RmsNormTrain } from "../../ops/norm/train.ts";
import { ZeroFloats } from "../../ops/optim/zero.ts";
import { SkipLoss } from "../../ops/route/train.ts";
import { bufferFrom } from "../../gpu/buffers.ts";
import type { TrainContext } from "./context.ts";
import { type LayerIO, PlainLayer, type TrainUnit } from "./layer.ts";
import { LinearTrain } from "./linear.ts";
import { RoutedLayer } from "./routed_layer.ts";
import type { RouteBuffers } from "./router.ts";

/** What a step leaves on the GPU for the host to read. */
export interface StepOutputs {
  /** f32 [3]: the LM loss's {mean, sum, counted rows}. */
  lmLoss: GPUBuffer;
  /** f32 [1]: L_skip without α (routed models). */
  skipLoss: GPUBuffer | null;
  /** f32 [routed, N]: each routed layer's gates of the batch. */
  gates: GPUBuffer | null;
}

export class TrainModel {
  readonly outputs: StepOutputs;
  private readonly embed: EmbeddingTrain;
  private readonly embedTrains: boolean;
  /** The backward stops below the lowest layer with a trainable weight (FlexiDepth's frozen lower half). */
  private readonly lowestTrained: number;
  private readonly layers: TrainUnit[] = [];
  private readonly mix: { copy: AddInto; mask: RowMask; at: number } | null = null;
  private readonly finalNorm: RmsNormTrain;
  private readonly head: LinearTrain;
  private readonly loss: CrossEntropy;
  private readonly skip: { loss: SkipLoss; zero: ZeroFloats } | null = null;

  constructor(readonly ctx: TrainContext, alpha: number) {
    const s = ctx.shape, N = ctx.rows, H = s.hidden, k = ctx.kernels;
    const resid = Array.from({ length: s.layers + 1 }, (_, l) => ctx.floats(`x${l}`, N * H));
    const dResA = ctx.floats("dRes", N * H), dResB = s.dmtd ? ctx.floats("dResThinking", N * H) : dResA;
    const embedW = ctx.param("model.embed_tokens.weight");
    this.embedTrains = embedW.grad !== null;
    this.lowestTrained = this.embedTrains ? 0 : lowestTrainedLayer(ctx);
    this.embed = new EmbeddingTrain(k, {
      tokens: ctx.floats("tokens", N),
      table: embedW.value,
      tableType: embedW.dtype,
      x: resid[0],
      dx: dResB,
      dTable: embedW.grad,
    }, { rows: N, hidden: H, vocab: s.vocab, workgroup: ctx.profile.normWorkgroup });
    const route = s.routed.length ? this.routeBuffers() : null;
    let mixedInput: GPUBuffer | null = null;
    if (s.dmtd) {
      mixedInput = ctx.floats("dmtd d_in", N * H);
      this.mix = this.dmtdMix(resid[0], resid[s.dmtd.thinking], mixedInput, dResA, dResB);
    }
    for (let l = 0; l < s.layers; l++) {
      const thinking = s.dmtd !== null && l < s.dmtd.thinking;
      const io: LayerIO = {
        x: mixedInput && l === s.dmtd!.thinking ? mixedInput : resid[l],
        out: resid[l + 1],
        dRes: thinking ? dResB : dResA,
      };
      const r = s.routed.indexOf(l);
      this.layers.push(r >= 0 ? new RoutedLayer(ctx, l, r, io, route!) : new PlainLayer(ctx, l, io));
    }
    const normW = ctx.param("model.norm.weight");
    const nf = ctx.floats("final norm", N * H);
    this.finalNorm = new RmsNormTrain(k, {
      x: resid[s.layers],
      weight: normW.value,
      dweight: normW.grad,
      y: nf,
      rstd: ctx.floats("final rstd", N),
      dy: ctx.scratch.dNorm,
      dx: dResA,
    }, { rows: N, width: H, eps: s.cfg.rmsNormEps, workgroup: ctx.profile.normWorkgroup });
    const logits = ctx.floats("logits", N * s.vocab);
    const headW = s.tiedEmbeddings ? embedW : ctx.param("lm_head.weight");
    this.head = new LinearTrain(k, headW, { x: nf, y: logits, dy: logits, dx: ctx.scratch.dNorm }, N);
    const lmLoss = ctx.floats("lm loss", 4);
    this.loss = new CrossEntropy(k, {
      logits,
      targets: ctx.floats("targets", N),
      losses: ctx.floats("row losses", N),
      mean: lmLoss,
    }, { rows: N, vocab: s.vocab, workgroup: ctx.profile.normWorkgroup });
    let skipLoss: GPUBuffer | null = null;
    if (route) {
      skipLoss = ctx.floats("skip loss", 4);
      this.skip = {
        loss: new SkipLoss(k, { rows: N, layers: s.routed.length, alpha }, {
          g: route.gates,
          dg: route.dgates,
          loss: skipLoss,
        }),
        zero: new ZeroFloats(k, [{ buffer: route.dgates, n: N * s.routed.length }]),
      };
    }
    this.outputs = { lmLoss, skipLoss, gates: route?.gates ?? null };
  }

  private routeBuffers(): RouteBuffers {
    const n = this.ctx.rows * this.ctx.shape.routed.length;
    return { gates: this.ctx.floats("gates", n), dgates: this.ctx.floats("dgates", n) };
  }

  /** DMTD's d_in = e + m_p · t with m_p = [p mod τ = 0], p the row's place in its sequence. */
  private dmtdMix(e: GPUBuffer, t: GPUBuffer, d: GPUBuffer, dD: GPUBuffer, dT: GPUBuffer) {
    const { ctx } = this, N = ctx.rows, H = ctx.shape.hidden, cycle = ctx.shape.dmtd!.cycle;
    const heads = Float32Array.from({ length: N }, (_, r) => (r % ctx.size.seq) % cycle === 0 ? 1 : 0);
    const mask = bufferFrom(ctx.device, "dmtd heads", heads);
    return {
      copy: new AddInto(ctx.kernels, { x: e, y: d }, N * H, false),
      mask: new RowMask(ctx.kernels, { mask, x: t, y: d, dy: dD, dx: dT }, N, H, { accumulateY: true }),
      at: ctx.shape.dmtd!.thinking,
    };
  }

  /** A micro-batch's tokens and targets ([N] each); `lmScale` weighs its mean loss's gradient. */
  setBatch(queue: GPUQueue, inputs: Uint32Array, targets: Uint32Array, lmScale = 1): number {
    this.embed.setTokens(queue, inputs);
    const counted = this.loss.setTargets(queue, targets, 0);
    this.loss.setScale(queue, counted ? lmScale / counted : 0);
    return counted;
  }

  /** α of the skip loss for the steps submitted after this (a micro-batch's share of it). */
  setAlpha(alpha: number): void {
    this.skip?.loss.setAlpha(alpha);
  }

  encodeForward(pass: ComputeRecorder): void {
    this.embed.forward(pass);
    for (let l = 0; l < this.layers.length; l++) {
      if (this.mix && l === this.mix.at) {
        this.mix.copy.encode(pass);
        this.mix.mask.forward(pass);
      }
      this.layers[l].forward(pass);
    }
    this.finalNorm.forward(pass);
    this.head.forward(pass);
    this.loss.encode(pass);
    if (this.skip) {
      this.skip.zero.encode(pass);
      this.skip.loss.encode(pass);
    }
  }

  /** Forward, loss and backward of the batch set last: every trainable parameter's gradient added to. */
  encodeStep(pass: ComputeRecorder): void {
    this.encodeForward(pass);
    this.head.backward(pass);
    this.finalNorm.backward(pass);
    for (let l = this.layers.length - 1; l >= this.lowestTrained; l--) {
      this.layers[l].backward(pass);
      if (this.mix && l === this.mix.at) this.mix.mask.backward(pass);
    }
    if (this.embedTrains) this.embed.backward(pass);
  }
}

/** The lowest layer holding a trainable weight (the layer count when none does). */
function lowestTrainedLayer(ctx: TrainContext): number {
  const trained = ctx.store.trainable().map((p) => /^model\.layers\.(\d+)\./.exec(p.name)).filter((m) => m);
  return Math.min(ctx.shape.layers, ...trained.map((m) => Number(m![1])));
}
