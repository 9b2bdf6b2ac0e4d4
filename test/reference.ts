/**
 * Plain-TypeScript reference forward of a Llama, Qwen2/2.5 or Qwen3 checkpoint, FlexiDepth routers included
 * (f32 math, one token at a time, its own KV cache). Used only by tests, to check the GPU engine on the same
 * weights. Reads top to bottom like llama2.c's forward(), in public pieces a test may compose otherwise (a
 * DMTD oracle): `embed`, `layer`, `logits`.
 */

import type { Checkpoint } from "../src/model/checkpoint.ts";
import { readTensorBytes } from "../src/model/safetensors.ts";
import { decodeToF32, type DType } from "../src/model/dtype.ts";
import { type ModelConfig, ropeInvFreq } from "../src/model/config.ts";
import { isQuantizedTensor, type QuantFormat, quantizeValues } from "../src/model/quant.ts";
import { quantizeXRow, referenceMatvec as matvec, silu } from "../src/ops/matmul/reference.ts";
import { referenceRmsNorm } from "../src/ops/norm/reference.ts";
import { referenceHead, referenceRope as rope } from "../src/ops/rope/reference.ts";
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
  /** Qwen3: the per-head RMSNorm weights of q and k, [head_dim] each. */
  qNorm?: Float32Array;
  kNorm?: Float32Array;
  /** Qwen2/2.5: the q, k and v projections' biases. */
  qBias?: Float32Array;
  kBias?: Float32Array;
  vBias?: Float32Array;
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
  /**
   * x of every quantized projection and the LM head rounded to int8 blocks (quantizeXRow), as one-row steps
   * on software GPUs compute them (quantize_x.wgsl); for a model loaded with `quant`.
   */
  quantizeX?: boolean;
}

/** What one decoder layer did: its gate g (1 on a plain layer) and whether its full layer ran. */
export interface RefLayerStep {
  g: number;
  run: boolean;
}

export interface RefCache {
  k: Float32Array[];
  v: Float32Array[];
}

/** Each value rounded to the nearest f16 (ties to even), in place. */
export function roundF16(a: Float32Array): Float32Array {
  a.set(new Float16Array(a));
  return a;
}

/** RMSNorm of one vector. */
export function rmsnorm(x: Float32Array, w: Float32Array, eps: number): Float32Array {
  return referenceRmsNorm(x, 1, x.length, w, eps);
}

export { rope };

export class ReferenceModel {
  readonly invFreq: Float32Array;
  /** K and V are rounded to f16 as they enter the cache (the engine's f16 KV cache, `--kv-cache f16`). */
  kvF16 = false;

  private constructor(
    readonly cfg: ModelConfig,
    /** The embedding table [vocab, hidden]. */
    readonly embedding: Float32Array,
    readonly layers: RefLayer[],
    readonly norm: Float32Array,
    readonly lmHead: Float32Array,
    readonly dtype: DType,
  ) {
    this.invFreq = ropeInvFreq(cfg);
  }

  /**
   * `quant`: the weights the engine computes with under `--quant` — the base model's projections and the LM
   * head (a tied one as a quantized copy of the embedding) round-tripped through the quantized format.
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
      const p = `model.layers.${i}.`, a = p + "self_attn.";
      const routed = cfg.routingLayers.includes(i);
      layers.push({
        ...(cfg.qkNorm ? { qNorm: await t(a + "q_norm.weight"), kNorm: await t(a + "k_norm.weight") } : {}),
        ...(cfg.attentionBias
          ? {
            qBias: await t(a + "q_proj.bias"),
            kBias: await t(a + "k_proj.bias"),
            vBias: await t(a + "v_proj.bias"),
          }
          : {}),
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
    const tied = cfg.tieWordEmbeddings && !ck.tensors.has("lm_head.weight");
    // A tied head under --quant: the engine's quantized copy of the embedding.
    const lmHead = !tied
      ? await t("lm_head.weight")
      : opts.quant
      ? quantizeValues(opts.quant, embed, cfg.vocabSize, cfg.hiddenSize)
      : embed;
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

  /** Token `token`'s embedding row: the hidden state the first layer reads. */
  embed(token: number): Float32Array {
    const H = this.cfg.hiddenSize;
    return this.embedding.slice(token * H, (token + 1) * H);
  }

  /** q or k of `heads` heads as attention reads them: + bias (Qwen2), per-head RMSNorm (Qwen3), RoPE at `pos`. */
  private heads(v: Float32Array, heads: number, pos: number, bias?: Float32Array, norm?: Float32Array): void {
    const hd = this.cfg.headDim;
    for (let h = 0; h < heads; h++) {
      referenceHead(v, h * hd, hd, pos, this.invFreq, bias, h * hd, norm, this.cfg.rmsNormEps);
    }
  }

  /**
   * Decoder layer `l` on the hidden state `x` (updated in place) of the token at `pos`, writing its K/V there
   * (the cache holds positions < pos); a routed layer decides by its gate as `opts` says.
   */
  layer(l: number, x: Float32Array, pos: number, cache: RefCache, opts: RefOptions = {}): RefLayerStep {
    const c = this.cfg, L = this.layers[l];
    const H = c.hiddenSize, hd = c.headDim, nH = c.numHeads, nKV = c.numKvHeads;
    const kvDim = nKV * hd;
    const xn = rmsnorm(x, L.inputNorm, c.rmsNormEps);
    const qx = (v: Float32Array) => opts.quantizeX ? quantizeXRow(v) : v, xq = qx(xn);
    let g = 1, run = true;
    if (L.router) {
      g = opts.fullDepth ? 1 : this.gate(L.router, xn);
      run = opts.fullDepth || g > (opts.threshold ?? 0.5);
    }
    // Every token writes its K/V, kept or skipped.
    const k = matvec(L.wk, xq, kvDim, H);
    const v = matvec(L.wv, xq, kvDim, H);
    this.heads(k, nKV, pos, L.kBias, L.kNorm);
    if (L.vBias) { for (let i = 0; i < kvDim; i++) v[i] += L.vBias[i]; }
    if (this.kvF16) [k, v].forEach(roundF16);
    if (run || !opts.noKvForSkipped) {
      cache.k[l].set(k, pos * kvDim);
      cache.v[l].set(v, pos * kvDim);
    } else {
      cache.k[l].fill(0, pos * kvDim, (pos + 1) * kvDim);
      cache.v[l].fill(0, pos * kvDim, (pos + 1) * kvDim);
    }
    if (L.router && !run) {
      // Skipped: x += (1 - g) · up(silu(gate(y)) * down(y)), y = post_attention_layernorm(x).
      const R = L.router;
      const y = rmsnorm(x, L.postNorm, c.rmsNormEps);
      const a = matvec(R.adapterGate, y, R.adapter, H);
      const b = matvec(R.adapterDown, y, R.adapter, H);
      for (let i = 0; i < a.length; i++) a[i] = silu(a[i]) * b[i];
      const out = matvec(R.adapterUp, a, H, R.adapter);
      for (let i = 0; i < H; i++) x[i] += (1 - g) * out[i];
      return { g, run };
    }
    // attention
    const q = matvec(L.wq, xq, nH * hd, H);
    this.heads(q, nH, pos, L.qBias, L.qNorm);
    const att = referenceAttention(q, cache.k[l], cache.v[l], pos, {
      numHeads: nH,
      numKvHeads: nKV,
      headDim: hd,
    });
    const o = matvec(L.wo, qx(att), H, nH * hd);
    for (let i = 0; i < H; i++) x[i] += o[i];
    // MLP
    const hn = qx(rmsnorm(x, L.postNorm, c.rmsNormEps));
    const act = matvec(L.gate, hn, c.intermediateSize, H);
    const u = matvec(L.up, hn, c.intermediateSize, H);
    for (let i = 0; i < act.length; i++) act[i] = silu(act[i]) * u[i];
    const d = matvec(L.down, qx(act), H, c.intermediateSize);
    for (let i = 0; i < H; i++) x[i] += g * d[i];
    return { g, run };
  }

  /** The final norm and the LM head (the embedding when tied) on a hidden state. */
  logits(x: Float32Array, opts: RefOptions = {}): Float32Array {
    const c = this.cfg, hn = rmsnorm(x, this.norm, c.rmsNormEps);
    return matvec(this.lmHead, opts.quantizeX ? quantizeXRow(hn) : hn, c.vocabSize, c.hiddenSize);
  }

  /** One token through every layer: logits, gates, routes and the layer count. */
  step(token: number, pos: number, cache: RefCache, opts: RefOptions = {}): RefStep {
    const gates: number[] = [], runs: boolean[] = [];
    const x = this.embed(token);
    for (let l = 0; l < this.cfg.numLayers; l++) {
      const { g, run } = this.layer(l, x, pos, cache, opts);
      if (this.layers[l].router) {
        gates.push(g);
        runs.push(run);
      }
    }
    return {
      logits: this.logits(x, opts),
      gates,
      runs,
      layers: this.cfg.numLayers - runs.filter((r) => !r).length,
    };
  }
}

export function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}
