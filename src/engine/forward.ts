/**
 * One forward step on the GPU, recorded into a compute pass: embedding → layers → final norm →
 * LM head → sampling. Every buffer and bind group is created once here; `encode` only records
 * dispatches, so a step allocates nothing. Reads top to bottom like llama2.c's forward().
 *
 * A FlexiDepth routed layer splits the step's rows on the GPU: its router kernel writes the kept and
 * skipped row lists and their counts, and each branch gathers its rows into a dense block, runs, and
 * scatters back. Branch kernels read their row count from what the router wrote, so a skipped token
 * reads no attention or MLP weights, and the host never waits on a routing decision. A step of one row
 * (decode of one sequence) needs no gathering: each branch has that row or none, so both run in place.
 */

import type { ModelConfig } from "../model/config.ts";
import { type DType, DTYPE_CODE } from "../model/dtype.ts";
import type { KernelCache } from "../gpu/kernels.ts";
import {
  bufferFrom,
  type GpuMatrix,
  rowTexture,
  storageBuffer,
  UNIFORM_WINDOW,
  uniformData,
  unusedRowTexture,
} from "../gpu/tensor.ts";
import type { ComputeRecorder } from "../gpu/profiler.ts";
import type { LayerWeights, ModelWeights, RouterWeights } from "./weights.ts";
import type { KvCache } from "./kv_cache.ts";
import { Matmul, type MatmulOptions } from "./matmul.ts";
import { isSoftwareGpu } from "../gpu/device.ts";
import { GpuSampler } from "./sampling.ts";
import { ropeTable } from "./rope.ts";

/** Buffers a step reads and writes; the engine fills the inputs, the sampler writes the outputs. */
export interface StepBuffers {
  /** Step {n_rows, n_out}. */
  step: GPUBuffer;
  /** Step {n_out}: the row count of the LM head. */
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
  /** Route words per row [maxRows, routeWords]: bit k = routed layer k ran. */
  routes: GPUBuffer;
}

/** Route words per row (bit k of the row's words = the k-th routed layer ran). */
export function routeWords(cfg: ModelConfig): number {
  return Math.max(1, Math.ceil(cfg.routingLayers.length / 32));
}

/** Words per output in the result buffer: token id, layer count, then route bits. */
export function resultStride(cfg: ModelConfig): number {
  return 2 + routeWords(cfg);
}

/** How routed layers decide (changeable between generations without reloading). */
export interface RoutingMode {
  /** Run a routed layer when g > threshold (0.5 as released). */
  threshold: number;
  /** Every routed layer runs in full with g = 1: the base model. */
  fullDepth: boolean;
}

/** Heads per workgroup of the serial attention kernel (software GPUs). */
const SERIAL_HEADS = 8;
/**
 * Split attention (GPUs): chunks of the context per (head, row), and the most rows a step may have to take
 * it (decode of a few sequences; prefill has rows enough to fill the GPU with one workgroup per head).
 */
const SPLIT_CHUNKS = 32; // ≤ 128, attention_merge's MAX_CHUNKS
const SPLIT_MAX_ROWS = 8;
/** Invocations of the route gate's workgroup on GPUs (one on CPU software GPUs). */
const GATE_WG = 128;
/** Workgroups per row of rope_kv at decode on GPUs (a row's work is ~2 K values: spread it). */
const ROPE_SLICES = 16;
/** RMSNorm's workgroup on CPU software GPUs: one SIMD pass on lavapipe (64 on GPUs; kernels/rmsnorm.wgsl). */
const RMSNORM_WG_SOFTWARE = 8;
/**
 * Software GPUs: from this hidden size on, a one-row step runs each RMSNorm once into a row texture that the
 * matmuls after it read (gemv_tex XTEX), instead of fusing it into them. Fused, every invocation recomputes
 * 1/RMS and gathers the norm weights beside x: a BF16 16384 × 2048 gate/up GEMV ran at 7.3 GB/s fused and 16
 * GB/s from the texture on lavapipe. Below it the extra dispatch (~50 µs there) costs more than it saves.
 */
const NORM_TEXTURE_MIN_HIDDEN = 1024;

interface Dispatch {
  kernel: GPUComputePipeline;
  group: GPUBindGroup;
}

/** Attention of one layer: one workgroup per (head, row), or split over the context and merged. */
interface Attention {
  whole: Dispatch;
  split: { chunks: Dispatch; merge: Dispatch } | null;
}

/**
 * The kernels of one layer, in the order they run. RMSNorms are fused into the matmuls that read their output
 * (`norm`), and SiLU(gate) · up into the matmul that computes gate and up (`swiglu`).
 */
interface PlainLayer {
  /** Wide models on software GPUs: input_layernorm(x) into the row texture qkv reads at one row (else null). */
  inNorm: Dispatch | null;
  qkv: Matmul;
  /** Null when the qkv matmul ropes and writes the cache itself (`ModelWeights.ropePairs`). */
  ropeKv: Dispatch | null;
  attention: Attention;
  o: Matmul;
  /** As inNorm: post_attention_layernorm(x) for gateUp. */
  postNorm: Dispatch | null;
  gateUp: Matmul;
  down: Matmul;
}

/**
 * A routed layer's two branches (row counts from the gate), over dense blocks that the gathers fill and the
 * scatters empty, or in place (no gathers or scatters).
 */
interface Branches {
  // kept rows: the full layer, MLP × g
  keptIn: Dispatch[];
  q: Matmul;
  ropeQ: Dispatch | null;
  attention: Attention;
  o: Matmul;
  mlpGateUp: Matmul;
  mlpDown: Matmul;
  keptOut: Dispatch[];
  // skipped rows: x += (1 − g) · Adapter(post_attention_layernorm(x))
  skippedIn: Dispatch[];
  adapterGateDown: Matmul;
  adapterUp: Matmul;
  skippedOut: Dispatch[];
}

interface RoutedLayer {
  /** One row on a wide model on a software GPU: input_layernorm(x) into the row texture kv, enc and q read. */
  inNorm: Dispatch | null;
  /** As inNorm, after o_proj: post_attention_layernorm(x) for the MLP or the adapter. */
  postNorm: Dispatch | null;
  // every row: K/V into the cache, and the router's e = enc · z (in the same matmul unless `enc`)
  kv: Matmul;
  kvWrite: Dispatch | null;
  enc: Matmul | null;
  // the gate takes logit = (head · dec) · tanh(RMSNorm_r(e)) and splits the rows
  gate: { routed: Dispatch; fullDepth: Dispatch };
  /** Several rows: each branch gathers its rows into a dense block, runs, and scatters them back. */
  gathered: Branches;
  /** One row: the branch that has it runs on it in place; the other has no rows. */
  inPlace: Branches;
}

export class ForwardPass {
  readonly buffers: StepBuffers;
  /** Routing used by the next steps encoded. */
  routing: RoutingMode = { threshold: 0.5, fullDepth: false };
  /** Every output samples greedily (the sampler then needs 2 of its 4 passes). */
  greedy = true;

  private readonly embed: Dispatch[];
  private readonly layers: Array<{ plain: PlainLayer } | { routed: RoutedLayer }>;
  private readonly finalNorm: Dispatch;
  private readonly lmHead: Matmul;
  private readonly sampler: GpuSampler;
  private readonly stepResult: Dispatch | null;
  private readonly thresholdParams: GPUBuffer[] = [];
  private appliedThreshold = 0.5;
  /** Workgroups per row of the attention kernel: one per head, or heads in groups of 8 (serial kernel). */
  private readonly attentionGroups: number;
  /** Workgroups per row of rope_kv at decode. */
  private readonly ropeSlices: number;
  /** One-row steps run each RMSNorm into a row texture that the matmuls after it read (normTextures). */
  readonly normsToTexture: boolean;

  constructor(
    private readonly kernels: KernelCache,
    readonly cfg: ModelConfig,
    weights: ModelWeights,
    kv: KvCache,
    readonly maxRows: number,
    readonly maxOut: number,
    /** Kernels for hardware GPUs (split attention, workgroup-wide gate); default: unless a software GPU. */
    gpuKernels = !isSoftwareGpu(kernels.gpu),
    /** Norms into a row texture at one row (EngineOptions.normTextures); default by hidden size. */
    normTextures = cfg.hiddenSize >= NORM_TEXTURE_MIN_HIDDEN,
  ) {
    const device = kernels.gpu.device;
    const H = cfg.hiddenSize, I = cfg.intermediateSize, hd = cfg.headDim;
    const qDim = cfg.numHeads * hd, kvDim = cfg.numKvHeads * hd;
    const f32 = (label: string, n: number) => storageBuffer(device, label, n * 4);
    // Matmul inputs: texture matmuls read a one-row step through a uniform window (gemv_tex.wgsl).
    const windowed = weights.layers[0]?.qkv.storage === "texture" ? "windowed" : "storage";
    const input = (label: string, n: number) => storageBuffer(device, label, n * 4, windowed);
    const stepBuffer = (label: string) => storageBuffer(device, label, 16);
    const words = routeWords(cfg);

    const b: StepBuffers = this.buffers = {
      step: stepBuffer("step"),
      outStep: stepBuffer("out_step"),
      rows: storageBuffer(device, "rows", maxRows * 8),
      tokens: storageBuffer(device, "tokens", Math.max(maxRows, maxOut) * 4),
      outRows: storageBuffer(device, "out_rows", maxOut * 4),
      positions: storageBuffer(device, "positions", maxOut * 4),
      sampleParams: storageBuffer(device, "sample_params", maxOut * 16),
      logits: f32("logits", maxOut * cfg.vocabSize),
      result: storageBuffer(device, "result", maxOut * resultStride(cfg) * 4),
      routes: storageBuffer(device, "routes", maxRows * words * 4),
    };
    // Activations of the step's rows.
    const x = input("x", maxRows * H);
    // Stacked projection outputs: [q | k | v] per row (plain layers) or [k | v (| e)] (routed layers).
    const qkv = f32("qkv", maxRows * Math.max(...weights.layers.map((L) => L.qkv.rows)));
    const att = input("att", maxRows * qDim);
    const act = input(
      "act",
      maxRows * Math.max(I, ...weights.layers.map((L) => L.router?.adapterUp.cols ?? 0)),
    );
    const hn = input("hn", maxOut * H);
    // Wide models on texture weights: one-row steps normalize x into this row texture (NORM_TEXTURE_MIN_HIDDEN).
    const xnTexture = normTextures && windowed === "windowed" && H * 4 <= UNIFORM_WINDOW
      ? rowTexture(device, "xn_texture", H)
      : undefined;
    const xn = xnTexture ? f32("xn", H) : undefined;
    this.normsToTexture = !!xnTexture;

    const uniform = (label: string, fields: Array<["u32" | "f32", number]>) =>
      bufferFrom(device, label, new Uint8Array(uniformData(fields)), "uniform");
    const dispatch = (
      name: string,
      constants: Record<string, number>,
      bufs: (GPUBuffer | GPUTextureView)[],
    ): Dispatch => {
      const kn = kernels.get(name, constants);
      return { kernel: kn.pipeline, group: kn.bind(bufs) };
    };

    const norm = (
      weight: GPUBuffer,
      src: GPUBuffer,
      dst: GPUBuffer,
      step: GPUBuffer,
      width = H,
      opts: { gather?: boolean; texture?: GPUTexture } = {},
    ) =>
      dispatch("rmsnorm", { WG: gpuKernels ? 64 : RMSNORM_WG_SOFTWARE }, [
        uniform("rmsnorm", [
          ["u32", width],
          ["f32", cfg.rmsNormEps],
          ["u32", (opts.gather ? 1 : 0) | (opts.texture ? 2 : 0)],
        ]),
        step,
        src,
        weight,
        dst,
        b.outRows,
        opts.texture?.createView() ?? unusedRowTexture(device),
      ]);
    const mm = (
      w: GpuMatrix,
      src: GPUBuffer,
      dst: GPUBuffer,
      step: GPUBuffer,
      opts: MatmulOptions = {},
      scale?: GPUBuffer,
      xTexture?: GPUTexture,
      argmax?: GPUBuffer,
    ) =>
      new Matmul(kernels, w, {
        x: src,
        y: dst,
        yStride: opts.swiglu ? w.rows / 2 : w.rows,
        step,
        rowScale: scale,
        xTexture,
        argmax,
      }, opts);
    const eps = cfg.rmsNormEps;
    const normed = (weight: GPUBuffer) => ({ norm: { weight, eps } });
    const mlp = (weight: GPUBuffer) => ({ norm: { weight, eps }, swiglu: true });
    const headParams: Array<["u32" | "f32", number]> = [
      ["u32", cfg.numHeads],
      ["u32", cfg.numKvHeads],
      ["u32", hd],
      ["u32", kv.context],
    ];
    const cosSin = bufferFrom(device, "rope_cos_sin", ropeTable(cfg, kv.context));
    // Barriers are costly on CPU software GPUs: there, one invocation per (head, row) with no barriers and
    // vec4 loads (head_dim and the q strides multiples of 4, as in every Llama).
    const serialAttention = !gpuKernels && hd % 4 === 0;
    this.attentionGroups = serialAttention ? Math.ceil(cfg.numHeads / SERIAL_HEADS) : cfg.numHeads;
    /** RoPE and the KV write over a projection output whose rows hold q, k, v at these columns. */
    const rope = (
      l: number,
      step: GPUBuffer,
      rows: GPUBuffer,
      src: GPUBuffer,
      at: { stride: number; q?: number; k?: number; v?: number },
    ) =>
      dispatch("rope_kv", {}, [
        uniform("rope_kv", [
          ...headParams,
          ["u32", at.stride],
          ["u32", at.q ?? 0],
          ["u32", at.k ?? 0],
          ["u32", at.v ?? 0],
          ["u32", (at.q === undefined ? 0 : 1) | (at.k === undefined ? 0 : 2)],
        ]),
        step,
        rows,
        cosSin,
        src,
        kv.k[l],
        kv.v[l],
      ]);
    const split = gpuKernels && hd % 4 === 0 && hd <= 256;
    this.ropeSlices = gpuKernels ? ROPE_SLICES : 1;
    const parts = split
      ? f32("attention_parts", SPLIT_MAX_ROWS * cfg.numHeads * SPLIT_CHUNKS * (hd + 2))
      : null;
    const attention = (l: number, step: GPUBuffer, rows: GPUBuffer, q: GPUBuffer, qStride: number) => {
      const scale: ["f32", number] = ["f32", 1 / Math.sqrt(hd)];
      const whole = dispatch(
        serialAttention ? "attention_serial" : "attention",
        serialAttention ? { WG: SERIAL_HEADS, HD4: hd / 4 } : {},
        [
          uniform("attention", [...headParams, scale, ["u32", qStride]]),
          step,
          rows,
          q,
          kv.k[l],
          kv.v[l],
          att,
        ],
      );
      if (!parts) return { whole, split: null };
      const params = uniform("attention_split", [
        ...headParams,
        scale,
        ["u32", qStride],
        ["u32", SPLIT_CHUNKS],
        ["u32", 0],
      ]);
      return {
        whole,
        split: {
          chunks: dispatch("attention_split", {}, [params, step, rows, q, kv.k[l], kv.v[l], parts]),
          merge: dispatch("attention_merge", {}, [params, step, parts, att]),
        },
      };
    };

    this.embed = weights.embed.parts.map((part) =>
      dispatch("embed", { W_DTYPE: DTYPE_CODE[weights.embed.dtype] }, [
        uniform("embed", [["u32", H], ["u32", part.firstRow], ["u32", part.rows], [
          "u32",
          weights.embed.rowStride,
        ]]),
        b.step,
        b.tokens,
        part.buffer!,
        x,
      ])
    );

    const qkvStride = qDim + 2 * kvDim;
    /** The attention projections' options: RMSNorm in, and RoPE + KV write out where the weights allow. */
    const fused = weights.ropePairs;
    const projection = (norm: GPUBuffer, l: number, rows: GPUBuffer, qRows: number, kvRows: number) => ({
      ...normed(norm),
      rope: fused
        ? {
          rows,
          cosSin,
          kCache: kv.k[l],
          vCache: kv.v[l],
          headDim: hd,
          qRows,
          kvDim: kvRows,
          ctx: kv.context,
        }
        : undefined,
    });
    /** RMSNorm of a one-row step's x into xnTexture, when the model has one. */
    const normToTexture = (weight: GPUBuffer) =>
      xnTexture ? norm(weight, x, xn!, b.step, H, { texture: xnTexture }) : null;
    const plainLayer = (L: LayerWeights, l: number): PlainLayer => ({
      inNorm: normToTexture(L.inputNorm),
      qkv: mm(L.qkv, x, qkv, b.step, projection(L.inputNorm, l, b.rows, qDim, kvDim), undefined, xnTexture),
      ropeKv: fused
        ? null
        : rope(l, b.step, b.rows, qkv, { stride: qkvStride, q: 0, k: qDim, v: qDim + kvDim }),
      attention: attention(l, b.step, b.rows, qkv, qkvStride),
      o: mm(L.o, att, x, b.step, { accumulate: true }),
      postNorm: normToTexture(L.postNorm),
      gateUp: mm(L.gateUp, x, act, b.step, mlp(L.postNorm), undefined, xnTexture),
      down: mm(L.down, act, x, b.step, { accumulate: true }),
    });

    // Routed layers share their scratch: the router's, the kept/skipped row lists, the gathered blocks.
    let routedLayer: ((L: LayerWeights, l: number) => RoutedLayer) | null = null;
    if (cfg.routingLayers.length) {
      const maxBottleneck = Math.max(...weights.layers.map((L) => L.router?.bottleneck ?? 0));
      const renc = f32("router_enc", maxRows * maxBottleneck);
      const keptStep = stepBuffer("kept_step"), skipStep = stepBuffer("skip_step");
      const keptIdx = storageBuffer(device, "kept_idx", maxRows * 4);
      const skipIdx = storageBuffer(device, "skip_idx", maxRows * 4);
      const keptG = f32("kept_g", maxRows), skipG = f32("skip_g", maxRows);
      const xb = input("x_block", maxRows * H);
      const rowsK = storageBuffer(device, "rows_kept", maxRows * 8);
      const q = f32("q", maxRows * qDim);
      const gatherRows = (count: GPUBuffer, idx: GPUBuffer, src: GPUBuffer, dst: GPUBuffer, width: number) =>
        dispatch("gather", {}, [uniform("gather", [["u32", width]]), count, idx, src, dst]);
      const scatterRows = (count: GPUBuffer, idx: GPUBuffer, src: GPUBuffer, dst: GPUBuffer) =>
        dispatch("scatter", {}, [uniform("scatter", [["u32", H]]), count, idx, src, dst]);
      const dtype: DType = weights.layers.find((L) => L.router)!.router!.adapterUp.dtype;

      routedLayer = (L: LayerWeights, l: number): RoutedLayer => {
        const R: RouterWeights = L.router!;
        const nth = cfg.routingLayers.indexOf(l);
        // e per row: its own buffer, or the columns after [k | v] of the stacked projection's output.
        const kvStride = L.qkv.rows;
        const [eBuffer, eStride, eOffset] = R.enc ? [renc, R.bottleneck, 0] : [qkv, kvStride, 2 * kvDim];
        const gateParams = uniform("route_gate", [
          ["f32", 0.5],
          ["u32", nth >> 5],
          ["u32", nth & 31],
          ["u32", words],
          ["u32", R.bottleneck],
          ["f32", cfg.rmsNormEps],
          ["u32", eStride],
          ["u32", eOffset],
        ]);
        this.thresholdParams.push(gateParams);
        const gateBuffers = [
          gateParams,
          b.step,
          eBuffer,
          b.routes,
          keptStep,
          skipStep,
          keptIdx,
          skipIdx,
          keptG,
          skipG,
          R.decHead,
          R.norm,
        ];
        const gateKernel = (fullDepth: boolean) =>
          dispatch("route_gate", {
            WG: gpuKernels ? GATE_WG : 1,
            W_DTYPE: DTYPE_CODE[dtype],
            FULL_DEPTH: fullDepth ? 1 : 0,
            FIRST_ROUTED: nth === 0 ? 1 : 0,
          }, gateBuffers);
        /**
         * Both branches reading and updating `block` (rows listed in `rows`), moved in and out by `moves`; in
         * place, their one row's norms come from xnTexture where the model has it.
         */
        const branches = (
          block: GPUBuffer,
          rows: GPUBuffer,
          moves: Pick<Branches, "keptIn" | "keptOut" | "skippedIn" | "skippedOut">,
          rowTex?: GPUTexture,
        ): Branches => ({
          ...moves,
          q: mm(L.q!, block, q, keptStep, projection(L.inputNorm, l, rows, qDim, 0), undefined, rowTex),
          ropeQ: fused ? null : rope(l, keptStep, rows, q, { stride: qDim, q: 0 }),
          attention: attention(l, keptStep, rows, q, qDim),
          o: mm(L.o, att, block, keptStep, { accumulate: true }),
          mlpGateUp: mm(L.gateUp, block, act, keptStep, mlp(L.postNorm), undefined, rowTex),
          mlpDown: mm(L.down, act, block, keptStep, { accumulate: true, scaleMode: 1 }, keptG),
          adapterGateDown: mm(R.adapterGateDown, block, act, skipStep, mlp(L.postNorm), undefined, rowTex),
          adapterUp: mm(R.adapterUp, act, block, skipStep, { accumulate: true, scaleMode: 2 }, skipG),
        });
        return {
          inNorm: normToTexture(L.inputNorm),
          postNorm: normToTexture(L.postNorm),
          kv: mm(L.qkv, x, qkv, b.step, projection(L.inputNorm, l, b.rows, 0, kvDim), undefined, xnTexture),
          kvWrite: fused ? null : rope(l, b.step, b.rows, qkv, { stride: kvStride, k: 0, v: kvDim }),
          enc: R.enc ? mm(R.enc, x, renc, b.step, normed(L.inputNorm), undefined, xnTexture) : null,
          gate: { routed: gateKernel(false), fullDepth: gateKernel(true) },
          gathered: branches(xb, rowsK, {
            keptIn: [
              gatherRows(keptStep, keptIdx, x, xb, H),
              gatherRows(keptStep, keptIdx, b.rows, rowsK, 2),
            ],
            keptOut: [scatterRows(keptStep, keptIdx, xb, x)],
            skippedIn: [gatherRows(skipStep, skipIdx, x, xb, H)],
            skippedOut: [scatterRows(skipStep, skipIdx, xb, x)],
          }),
          inPlace: branches(
            x,
            b.rows,
            { keptIn: [], keptOut: [], skippedIn: [], skippedOut: [] },
            xnTexture,
          ),
        };
      };
    }
    this.layers = weights.layers.map((L, l) =>
      L.router && routedLayer ? { routed: routedLayer(L, l) } : { plain: plainLayer(L, l) }
    );

    // Texture weights: the final norm also writes its (one-row decode) output as a row texture, where the LM
    // head's gemv_tex reads x in a fraction of a uniform gather's time (the head is most of a small model's bytes).
    const hnTexture = weights.lmHead.storage === "texture" && H * 4 <= UNIFORM_WINDOW
      ? rowTexture(device, "hn_texture", H)
      : undefined;
    this.finalNorm = norm(weights.norm, x, hn, b.step, H, { gather: true, texture: hnTexture });
    // ... and leaves the (key, index) of each invocation's largest logit, so the sampler skips its first pass.
    const headParts = hnTexture
      ? storageBuffer(device, "head_parts", (Math.ceil(cfg.vocabSize / 4) + weights.lmHead.parts.length) * 8)
      : undefined;
    this.lmHead = mm(weights.lmHead, hn, b.logits, b.outStep, {}, undefined, hnTexture, headParts);
    this.sampler = new GpuSampler(kernels, {
      vocab: cfg.vocabSize,
      maxRows: maxOut,
      resultStride: resultStride(cfg),
      headParts: this.lmHead.argmaxPairs || undefined,
    });
    this.sampler.bind(b.logits, b.sampleParams, b.positions, b.tokens, b.result, headParts);
    this.stepResult = cfg.routingLayers.length
      ? dispatch("step_result", {}, [
        uniform("step_result", [
          ["u32", cfg.numLayers - cfg.routingLayers.length],
          ["u32", words],
          ["u32", resultStride(cfg)],
        ]),
        b.step,
        b.outRows,
        b.routes,
        b.result,
      ])
      : null;
  }

  /**
   * Records one step over `nRows` rows; `nOut` of them (listed in outRows) get logits and a sampled
   * token. `sample = false` stops after the logits (tests read them).
   */
  encode(pass: ComputeRecorder, nRows: number, nOut: number, sample = true): void {
    this.applyThreshold();
    const run = (d: Dispatch, gx: number, gy = 1, gz = 1) => {
      pass.setPipeline(d.kernel);
      pass.setBindGroup(0, d.group);
      pass.dispatchWorkgroups(gx, gy, gz);
    };
    const ropeSlices = nRows <= SPLIT_MAX_ROWS ? this.ropeSlices : 1;
    const attend = (a: Attention) => {
      if (a.split && nRows <= SPLIT_MAX_ROWS) {
        run(a.split.chunks, this.cfg.numHeads, SPLIT_CHUNKS, nRows);
        run(a.split.merge, this.cfg.numHeads, nRows);
      } else {
        run(a.whole, this.attentionGroups, nRows);
      }
    };
    const H = this.cfg.hiddenSize;
    const perRow = (width: number, wg: number) => Math.ceil(width / wg);

    for (const part of this.embed) run(part, nRows);
    for (const layer of this.layers) {
      if ("plain" in layer) {
        const L = layer.plain;
        // Attention block: x += o_proj(attention(rope(q), K, V)), q, k, v = [q; k; v] · input_layernorm(x);
        // this step's K/V written to the cache.
        if (L.inNorm && nRows === 1) run(L.inNorm, 1);
        L.qkv.encode(pass, nRows);
        if (L.ropeKv) run(L.ropeKv, nRows, ropeSlices);
        attend(L.attention);
        L.o.encode(pass, nRows);
        // MLP block: x += down(silu(gate(y)) * up(y)), y = post_attention_layernorm(x), all but down in one matmul.
        if (L.postNorm && nRows === 1) run(L.postNorm, 1);
        L.gateUp.encode(pass, nRows);
        L.down.encode(pass, nRows);
        continue;
      }
      const L = layer.routed;
      // Every row writes its K/V, kept or skipped, and gets its router bottleneck e = enc · z.
      if (L.inNorm && nRows === 1) run(L.inNorm, 1);
      L.kv.encode(pass, nRows);
      if (L.kvWrite) run(L.kvWrite, nRows, ropeSlices);
      // Router: g per row; the gate kernel writes the kept and skipped row lists (full depth: all kept, g = 1).
      if (this.routing.fullDepth) {
        run(L.gate.fullDepth, 1);
      } else {
        L.enc?.encode(pass, nRows);
        run(L.gate.routed, 1);
      }
      const B = nRows === 1 ? L.inPlace : L.gathered;
      const move = (ds: Dispatch[]) => ds.forEach((d) => run(d, perRow(H, 64), nRows));
      // Kept rows: x += o_proj(attention); x += g · MLP(post_attention_layernorm(x)).
      move(B.keptIn);
      B.q.encode(pass, nRows);
      if (B.ropeQ) run(B.ropeQ, nRows, ropeSlices);
      attend(B.attention);
      B.o.encode(pass, nRows);
      // One row: post_attention_layernorm(x) for whichever branch has it (x is unchanged if it was skipped).
      if (L.postNorm && nRows === 1) run(L.postNorm, 1);
      B.mlpGateUp.encode(pass, nRows);
      B.mlpDown.encode(pass, nRows);
      move(B.keptOut);
      // Skipped rows: x += (1 − g) · up(silu(gate(y)) * down(y)), y = post_attention_layernorm(x).
      move(B.skippedIn);
      B.adapterGateDown.encode(pass, nRows);
      B.adapterUp.encode(pass, nRows);
      move(B.skippedOut);
    }
    if (nOut === 0) return;
    run(this.finalNorm, nOut);
    this.lmHead.encode(pass, nOut);
    if (!sample) return;
    // One row: the LM head left its argmax pairs, the sampler starts from them.
    this.sampler.encode(pass, nOut, this.greedy, nOut === 1 && this.lmHead.argmaxPairs > 0);
    if (this.stepResult) run(this.stepResult, 1);
  }

  /** Writes a changed threshold into the gate kernels' parameters (queue-ordered with the steps). */
  private applyThreshold(): void {
    const t = this.routing.threshold;
    if (t === this.appliedThreshold) return;
    for (const p of this.thresholdParams) {
      this.kernels.gpu.device.queue.writeBuffer(p, 0, new Float32Array([t]));
    }
    this.appliedThreshold = t;
  }
}
