/**
 * Plain-TypeScript reference forward of a Llama checkpoint (f32 math, one token at a time, its own
 * KV cache). Used only by tests, to check the GPU engine on the same weights.
 * Reads top to bottom like llama2.c's forward().
 */

import type { Checkpoint } from "../src/model/checkpoint.ts";
import { readTensorBytes } from "../src/model/safetensors.ts";
import { decodeToF32, type DType } from "../src/model/dtype.ts";
import { type ModelConfig, ropeInvFreq } from "../src/model/config.ts";
import { isQuantizedTensor, type QuantFormat, quantizeValues } from "../src/model/quant.ts";
import { referenceMatvec as matvec, silu } from "../src/ops/matmul/reference.ts";
import { referenceRmsNorm } from "../src/ops/norm/reference.ts";
import { referenceRope as rope } from "../src/ops/rope/reference.ts";
import { referenceAttention } from "../src/ops/attention/reference.ts";
import { referenceGate, type RouterValues } from "../src/ops/route/reference.ts";

export interface RefLayer {
  inputNorm: Float32Array;
  wq: Float32Array;
  wk: Float32Array;
  wv: Float32Array;
  wo: Float32Array;
  postNorm: Float32Array;
  gate: Float32Array;
  up: Float32Array;
  down: Float32Array;
  /** FlexiDepth router and adapter (routed layers only). */
  router?: RouterValues & {
    adapterGate: Float32Array;
    adapterDown: Float32Array;
    adapterUp: Float32Array;
    adapter: number;
  };
}

/** What one token's forward pass did: its logits, gates and routes per routed layer. */
export interface RefStep {
  logits: Float32Array;
  /** Gate g per routed layer (after rounding to the checkpoint dtype). */
  gates: number[];
  /** Run bit per routed layer. */
  runs: boolean[];
  /** Non-routed layers + kept routed layers. */
  layers: number;
}

export interface RefOptions {
  /** Gate threshold (run when g > threshold); 0.5 as released. */
  threshold?: number;
  /** Every routed layer runs its full layer with g = 1 (the base model). */
  fullDepth?: boolean;
  /** A deliberately wrong variant (tests show they can tell): skipped tokens write no K/V. */
  noKvForSkipped?: boolean;
}

export interface RefCache {
  k: Float32Array[];
  v: Float32Array[];
}

/** RMSNorm of one vector. */
export function rmsnorm(x: Float32Array, w: Float32Array, eps: number): Float32Array {
  return referenceRmsNorm(x, 1, x.length, w, eps);
}

export { rope };

export class ReferenceModel {
  readonly invFreq: Float32Array;

  private constructor(
    readonly cfg: ModelConfig,
    readonly embed: Float32Array,
    readonly layers: RefLayer[],
    readonly norm: Float32Array,
    readonly lmHead: Float32Array,
    readonly dtype: DType,
  ) {
    this.invFreq = ropeInvFreq(cfg);
  }

  /**
   * `quant`: the weights the engine computes with under `--quant` — the base model's projections (and an
   * untied LM head) round-tripped through the quantized format.
   */
  static async load(ck: Checkpoint, opts: { quant?: QuantFormat | null } = {}): Promise<ReferenceModel> {
    /** A tensor's values (quantized as the engine stores it under `quant`). */
    const t = async (name: string) => {
      const info = ck.tensors.get(name);
      if (!info) throw new Error(`reference: tensor ${name} missing`);
      const values = decodeToF32(info.dtype, await readTensorBytes(info));
      if (!opts.quant || !isQuantizedTensor(name)) return values;
      return quantizeValues(opts.quant, values, info.shape[0], info.shape[1]);
    };
    const cfg = ck.config;
    const layers: RefLayer[] = [];
    for (let i = 0; i < cfg.numLayers; i++) {
      const p = `model.layers.${i}.`;
      const routed = cfg.routingLayers.includes(i);
      layers.push({
        router: routed
          ? {
            enc: await t(p + "router.router_enc.weight"),
            norm: await t(p + "router.router_norm.weight"),
            dec: await t(p + "router.router_dec.weight"),
            head: await t(p + "router.router_head.weight"),
            bottleneck: ck.tensors.get(p + "router.router_norm.weight")!.shape[0],
            adapterGate: await t(p + "router_proj.gate_proj.weight"),
            adapterDown: await t(p + "router_proj.down_proj.weight"),
            adapterUp: await t(p + "router_proj.up_proj.weight"),
            adapter: ck.tensors.get(p + "router_proj.gate_proj.weight")!.shape[0],
          }
          : undefined,
        inputNorm: await t(p + "input_layernorm.weight"),
        wq: await t(p + "self_attn.q_proj.weight"),
        wk: await t(p + "self_attn.k_proj.weight"),
        wv: await t(p + "self_attn.v_proj.weight"),
        wo: await t(p + "self_attn.o_proj.weight"),
        postNorm: await t(p + "post_attention_layernorm.weight"),
        gate: await t(p + "mlp.gate_proj.weight"),
        up: await t(p + "mlp.up_proj.weight"),
        down: await t(p + "mlp.down_proj.weight"),
      });
    }
    const embed = await t("model.embed_tokens.weight");
    const lmHead = cfg.tieWordEmbeddings && !ck.tensors.has("lm_head.weight")
      ? embed
      : await t("lm_head.weight");
    return new ReferenceModel(cfg, embed, layers, await t("model.norm.weight"), lmHead, ck.dtype);
  }

  newCache(): RefCache {
    const kvDim = this.cfg.numKvHeads * this.cfg.headDim;
    const n = this.cfg.maxPositions * kvDim;
    return {
      k: this.layers.map(() => new Float32Array(n)),
      v: this.layers.map(() => new Float32Array(n)),
    };
  }

  /** Runs one token at `pos` (cache holds positions < pos) and returns its logits. */
  forward(token: number, pos: number, cache: RefCache, opts: RefOptions = {}): Float32Array {
    return this.step(token, pos, cache, opts).logits;
  }

  /** FlexiDepth router of one routed layer (ops/route/reference.ts), g rounded to the checkpoint dtype. */
  gate(R: RouterValues, z: Float32Array): number {
    return referenceGate(R, z, this.cfg.rmsNormEps, this.dtype);
  }

  /** One token through every layer: logits, gates, routes and the layer count. */
  step(token: number, pos: number, cache: RefCache, opts: RefOptions = {}): RefStep {
    const threshold = opts.threshold ?? 0.5;
    const gates: number[] = [], runs: boolean[] = [];
    const c = this.cfg;
    const H = c.hiddenSize, hd = c.headDim, nH = c.numHeads, nKV = c.numKvHeads;
    const kvDim = nKV * hd;
    const x = this.embed.slice(token * H, (token + 1) * H);

    for (let l = 0; l < c.numLayers; l++) {
      const L = this.layers[l];
      const xn = rmsnorm(x, L.inputNorm, c.rmsNormEps);
      let g = 1, run = true;
      if (L.router) {
        g = opts.fullDepth ? 1 : this.gate(L.router, xn);
        run = opts.fullDepth || g > threshold;
        gates.push(g);
        runs.push(run);
      }
      // Every token writes its K/V, kept or skipped.
      const k = matvec(L.wk, xn, kvDim, H);
      const v = matvec(L.wv, xn, kvDim, H);
      for (let h = 0; h < nKV; h++) rope(k, h * hd, hd, pos, this.invFreq);
      if (run || !opts.noKvForSkipped) {
        cache.k[l].set(k, pos * kvDim);
        cache.v[l].set(v, pos * kvDim);
      } else {
        cache.k[l].fill(0, pos * kvDim, (pos + 1) * kvDim);
        cache.v[l].fill(0, pos * kvDim, (pos + 1) * kvDim);
      }
      if (L.router) {
        if (!run) {
          // Skipped: x += (1 - g) · up(silu(gate(y)) * down(y)), y = post_attention_layernorm(x).
          const R = L.router;
          const y = rmsnorm(x, L.postNorm, c.rmsNormEps);
          const a = matvec(R.adapterGate, y, R.adapter, H);
          const b = matvec(R.adapterDown, y, R.adapter, H);
          for (let i = 0; i < a.length; i++) a[i] = silu(a[i]) * b[i];
          const out = matvec(R.adapterUp, a, H, R.adapter);
          for (let i = 0; i < H; i++) x[i] += (1 - g) * out[i];
          continue;
        }
      }
      // attention
      const q = matvec(L.wq, xn, nH * hd, H);
      for (let h = 0; h < nH; h++) rope(q, h * hd, hd, pos, this.invFreq);
      const att = referenceAttention(q, cache.k[l], cache.v[l], pos, {
        numHeads: nH,
        numKvHeads: nKV,
        headDim: hd,
      });
      const o = matvec(L.wo, att, H, nH * hd);
      for (let i = 0; i < H; i++) x[i] += o[i];
      // MLP
      const hn = rmsnorm(x, L.postNorm, c.rmsNormEps);
      const act = matvec(L.gate, hn, c.intermediateSize, H);
      const u = matvec(L.up, hn, c.intermediateSize, H);
      for (let i = 0; i < act.length; i++) act[i] = silu(act[i]) * u[i];
      const d = matvec(L.down, act, H, c.intermediateSize);
      for (let i = 0; i < H; i++) x[i] += g * d[i];
    }
    const xf = rmsnorm(x, this.norm, c.rmsNormEps);
    return {
      logits: matvec(this.lmHead, xf, c.vocabSize, H),
      gates,
      runs,
      layers: c.numLayers - runs.filter((r) => !r).length,
    };
  }
}

export function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}
