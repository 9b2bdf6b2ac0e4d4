/**
 * One forward step on the GPU, recorded into a compute pass: embedding → layers → final norm →
 * LM head → sampling. Every buffer and bind group is created once here; `encode` only records
 * dispatches, so a step allocates nothing. Reads top to bottom like llama2.c's forward().
 */

import type { ModelConfig } from "../model/config.ts";
import { ropeTable } from "./rope.ts";
import { DTYPE_CODE } from "../model/dtype.ts";
import type { KernelCache } from "../gpu/kernels.ts";
import { bufferFrom, type GpuMatrix, storageBuffer, uniformData } from "../gpu/tensor.ts";
import type { ModelWeights } from "./weights.ts";
import type { KvCache } from "./kv_cache.ts";
import { Matmul } from "./matmul.ts";
import { GpuSampler } from "./sampling.ts";

/** Buffers a step reads and writes; the engine fills the inputs, the sampler writes the outputs. */
export interface StepBuffers {
  /** Uniform {n_rows, n_out}. */
  step: GPUBuffer;
  /** Uniform {n_out}: the row count of the LM head. */
  outStep: GPUBuffer;
  /** Row {slot, pos} per row. */
  rows: GPUBuffer;
  /** Input token id per row; the sampler writes the next step's tokens here. */
  tokens: GPUBuffer;
  /** Row index per output (rows that get logits and a sampled token). */
  outRows: GPUBuffer;
  /** RNG counter per output. */
  positions: GPUBuffer;
  /** SampleParams per output. */
  sampleParams: GPUBuffer;
  /** Logits [maxOut, vocab]. */
  logits: GPUBuffer;
  /** Result slot per output: [token id, layers, route words…]. */
  result: GPUBuffer;
}

/** Words per output in the result buffer: token id, layer count, then route bits. */
export function resultStride(cfg: ModelConfig): number {
  return 2 + Math.ceil(Math.max(1, cfg.routingLayers.length) / 32);
}

interface Dispatch {
  kernel: GPUComputePipeline;
  group: GPUBindGroup;
}

export class ForwardPass {
  readonly buffers: StepBuffers;
  private readonly x: GPUBuffer;
  private readonly xn: GPUBuffer;
  private readonly q: GPUBuffer;
  private readonly k: GPUBuffer;
  private readonly v: GPUBuffer;
  private readonly att: GPUBuffer;
  private readonly gate: GPUBuffer;
  private readonly up: GPUBuffer;
  private readonly hn: GPUBuffer;

  private readonly embed: Dispatch[];
  private readonly layers: {
    inputNorm: Dispatch;
    q: Matmul;
    k: Matmul;
    v: Matmul;
    ropeKv: Dispatch;
    attention: Dispatch;
    o: Matmul;
    postNorm: Dispatch;
    gate: Matmul;
    up: Matmul;
    swiglu: Dispatch;
    down: Matmul;
  }[];
  private readonly finalNorm: Dispatch;
  private readonly lmHead: Matmul;
  private readonly sampler: GpuSampler;

  constructor(
    kernels: KernelCache,
    readonly cfg: ModelConfig,
    weights: ModelWeights,
    kv: KvCache,
    readonly maxRows: number,
    readonly maxOut: number,
  ) {
    const device = kernels.gpu.device;
    const H = cfg.hiddenSize, I = cfg.intermediateSize, hd = cfg.headDim;
    const qDim = cfg.numHeads * hd, kvDim = cfg.numKvHeads * hd;
    const f32 = (label: string, n: number) => storageBuffer(device, label, n * 4);
    const uniform = (label: string, fields: Array<["u32" | "f32", number]>) =>
      bufferFrom(device, label, new Uint8Array(uniformData(fields)), "uniform");

    this.buffers = {
      step: uniform("step", [["u32", 0], ["u32", 0], ["u32", 0], ["u32", 0]]),
      outStep: uniform("out_step", [["u32", 0], ["u32", 0], ["u32", 0], ["u32", 0]]),
      rows: storageBuffer(device, "rows", maxRows * 8),
      tokens: storageBuffer(device, "tokens", Math.max(maxRows, maxOut) * 4),
      outRows: storageBuffer(device, "out_rows", maxOut * 4),
      positions: storageBuffer(device, "positions", maxOut * 4),
      sampleParams: storageBuffer(device, "sample_params", maxOut * 16),
      logits: f32("logits", maxOut * cfg.vocabSize),
      result: storageBuffer(device, "result", maxOut * resultStride(cfg) * 4),
    };
    const b = this.buffers;
    this.x = f32("x", maxRows * H);
    this.xn = f32("xn", maxRows * H);
    this.q = f32("q", maxRows * qDim);
    this.k = f32("k", maxRows * kvDim);
    this.v = f32("v", maxRows * kvDim);
    this.att = f32("att", maxRows * qDim);
    this.gate = f32("gate", maxRows * I);
    this.up = f32("up", maxRows * I);
    this.hn = f32("hn", maxOut * H);

    const dispatch = (name: string, constants: Record<string, number>, bufs: GPUBuffer[]): Dispatch => {
      const k = kernels.get(name, constants);
      return { kernel: k.pipeline, group: k.bind(bufs) };
    };
    const norm = (weight: GPUBuffer, src: GPUBuffer, dst: GPUBuffer, gather: boolean): Dispatch =>
      dispatch("rmsnorm", { GATHER: gather ? 1 : 0 }, [
        uniform("rmsnorm", [["u32", H], ["f32", cfg.rmsNormEps]]),
        b.step,
        src,
        weight,
        dst,
        b.outRows,
      ]);
    const mm = (w: GpuMatrix, x: GPUBuffer, y: GPUBuffer, accumulate = false, step = b.step) =>
      new Matmul(kernels, w, { x, y, yStride: w.rows, step }, { accumulate });

    this.embed = weights.embed.parts.map((part) =>
      dispatch("embed", { W_DTYPE: DTYPE_CODE[weights.embed.dtype] }, [
        uniform("embed", [["u32", H], ["u32", part.firstRow], ["u32", part.rows], [
          "u32",
          weights.embed.rowStride,
        ]]),
        b.step,
        b.tokens,
        part.buffer,
        this.x,
      ])
    );

    const cosSin = bufferFrom(device, "rope_cos_sin", ropeTable(cfg, kv.context));
    const headParams = [["u32", cfg.numHeads], ["u32", cfg.numKvHeads], ["u32", hd], [
      "u32",
      kv.context,
    ]] as Array<
      ["u32" | "f32", number]
    >;
    this.layers = weights.layers.map((L, l) => ({
      inputNorm: norm(L.inputNorm, this.x, this.xn, false),
      q: mm(L.q, this.xn, this.q),
      k: mm(L.k, this.xn, this.k),
      v: mm(L.v, this.xn, this.v),
      ropeKv: dispatch("rope_kv", {}, [
        uniform("rope_kv", headParams),
        b.step,
        b.rows,
        cosSin,
        this.q,
        this.k,
        this.v,
        kv.k[l],
        kv.v[l],
      ]),
      attention: dispatch("attention", {}, [
        uniform("attention", [...headParams, ["f32", 1 / Math.sqrt(hd)]]),
        b.step,
        b.rows,
        this.q,
        kv.k[l],
        kv.v[l],
        this.att,
      ]),
      o: mm(L.o, this.att, this.x, true),
      postNorm: norm(L.postNorm, this.x, this.xn, false),
      gate: mm(L.gate, this.xn, this.gate),
      up: mm(L.up, this.xn, this.up),
      swiglu: dispatch("swiglu", {}, [uniform("swiglu", [["u32", I]]), b.step, this.gate, this.up]),
      down: mm(L.down, this.gate, this.x, true),
    }));
    this.finalNorm = norm(weights.norm, this.x, this.hn, true);
    this.lmHead = mm(weights.lmHead, this.hn, b.logits, false, b.outStep);
    this.sampler = new GpuSampler(kernels, {
      vocab: cfg.vocabSize,
      maxRows: maxOut,
      resultStride: resultStride(cfg),
    });
    this.sampler.bind(b.logits, b.sampleParams, b.positions, b.tokens, b.result);
  }

  /**
   * Records one step over `nRows` rows; `nOut` of them (listed in outRows) get logits and a sampled
   * token. `sample = false` stops after the logits (tests read them).
   */
  encode(pass: GPUComputePassEncoder, nRows: number, nOut: number, sample = true): void {
    const run = (d: Dispatch, x: number, y = 1) => {
      pass.setPipeline(d.kernel);
      pass.setBindGroup(0, d.group);
      pass.dispatchWorkgroups(x, y);
    };
    const cfg = this.cfg;
    for (const part of this.embed) run(part, nRows);
    for (const L of this.layers) {
      // Attention block: x += o_proj(attention(rope(q), K, V)) with K/V of this step written to the cache.
      run(L.inputNorm, nRows);
      L.q.encode(pass, nRows);
      L.k.encode(pass, nRows);
      L.v.encode(pass, nRows);
      run(L.ropeKv, nRows);
      run(L.attention, cfg.numHeads, nRows);
      L.o.encode(pass, nRows);
      // MLP block: x += down(silu(gate(xn)) * up(xn)).
      run(L.postNorm, nRows);
      L.gate.encode(pass, nRows);
      L.up.encode(pass, nRows);
      run(L.swiglu, Math.ceil(cfg.intermediateSize / 256), nRows);
      L.down.encode(pass, nRows);
    }
    if (nOut === 0) return;
    run(this.finalNorm, nOut);
    this.lmHead.encode(pass, nOut);
    if (sample) this.sampler.encode(pass, nOut);
  }
}
