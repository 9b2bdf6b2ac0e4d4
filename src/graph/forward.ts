/**
 * One forward step on the GPU, recorded into a compute pass: embedding → layers → final norm → LM head →
 * sampling. Every buffer (`RunState`) and bind group is made once here; `encode` only records dispatches, so
 * a step allocates nothing. Reads top to bottom like llama2.c's forward(); each layer is a unit of its kind
 * (layers/) that builds and records its own dispatches.
 */

import type { ModelConfig } from "../model/config.ts";
import type { KernelCache } from "../gpu/kernels.ts";
import type { BackendProfile } from "../gpu/profile.ts";
import type { ComputeRecorder } from "../gpu/profiler.ts";
import { Embedding } from "../ops/embed/embed.ts";
import { RmsNorm } from "../ops/norm/rmsnorm.ts";
import type { Matmul } from "../ops/matmul/matmul.ts";
import { GpuSampler } from "../ops/sample/sampler.ts";
import { ResultSlots } from "../ops/sample/result_slots.ts";
import { Logprob } from "../ops/sample/logprob.ts";
import type { RouteGate } from "../ops/route/gate.ts";
import type { KvCache } from "./kv_cache.ts";
import type { ModelWeights } from "./weights.ts";
import { createRunState, resultStride, routeWords, type RunState } from "./run_state.ts";
import { LayerBuilder, type RoutingMode } from "./layer_builder.ts";
import { LlamaLayer } from "./layers/llama.ts";
import { FlexiDepthLayer } from "./layers/flexidepth.ts";
import { DmtdStack } from "./layers/dmtd.ts";
import { type DmtdShape, type LayerStack, SequentialStack } from "./stack.ts";

export type { RoutingMode } from "./layer_builder.ts";

/** What a step leaves after the LM head. */
export type StepOutput = "sample" | "score" | "logits";

/** How many rows a step may have, how many sequences are cached, how many output rows a scoring step has. */
export interface ForwardSize {
  maxRows: number;
  slots: number;
  /** 0: no scoring steps. */
  scoreRows: number;
}

export class ForwardPass {
  readonly state: RunState;
  /** Routing used by the next steps encoded. */
  routing: RoutingMode = { threshold: 0.5, fullDepth: false };
  /** Every output samples greedily (the sampler then needs 2 of its 4 passes). */
  greedy = true;

  /** The layers between the token ids and the final norm. */
  private readonly stack: LayerStack;
  private readonly finalNorm: RmsNorm;
  private readonly lmHead: Matmul;
  private readonly sampler: GpuSampler;
  /** Routed models: the layers used per output (a plain model's count is its depth). */
  private readonly resultSlots: ResultSlots | null;
  private readonly gates: RouteGate[];
  /** Scoring steps' log-probabilities (engines loaded with scoring rows). */
  private readonly logprob: Logprob | null;
  private appliedThreshold = 0.5;

  constructor(
    kernels: KernelCache,
    readonly cfg: ModelConfig,
    weights: ModelWeights,
    kv: KvCache,
    readonly profile: BackendProfile,
    readonly size: ForwardSize,
  ) {
    const maxOut = Math.max(size.slots, size.scoreRows);
    const s = this.state = createRunState(kernels.gpu.device, cfg, weights, profile, {
      maxRows: size.maxRows,
      maxOut,
      context: kv.context,
      scoring: size.scoreRows > 0,
    });
    const b = new LayerBuilder(kernels, cfg, profile, s, kv, weights.ropePairs);
    if (s.dmtd) {
      const think = new LayerBuilder(
        kernels,
        cfg,
        profile,
        { ...s, step: s.dmtd.thinkStep, rows: s.dmtd.thinkRows },
        kv,
        weights.ropePairs,
      );
      this.stack = new DmtdStack(b, think, cfg, weights, size.slots);
      this.gates = [];
    } else {
      const layers = weights.layers.map((L, l) =>
        L.router ? new FlexiDepthLayer(b, L, l) : new LlamaLayer(b, L, l)
      );
      this.stack = new SequentialStack(new Embedding(kernels, weights.embed, s), layers);
      this.gates = layers.flatMap((u) => u instanceof FlexiDepthLayer ? [u.gate] : []);
    }
    // The final norm of the output rows; on texture weights also a row texture, where the LM head's one-row
    // kernel reads x, leaving (key, index) pairs from which the sampler starts.
    this.finalNorm = new RmsNorm(
      kernels,
      {
        x: s.x,
        weight: weights.norm,
        y: s.hn,
        step: s.step,
        outRows: s.outRows,
        texture: s.hnTexture ?? undefined,
      },
      { hidden: cfg.hiddenSize, eps: cfg.rmsNormEps, workgroup: profile.normWorkgroup, gather: true },
    );
    this.lmHead = b.matmul(weights.lmHead, s.hn, s.logits, s.outStep, {}, {
      xTexture: s.hnTexture,
      argmax: s.headParts,
    });
    this.sampler = new GpuSampler(kernels, {
      vocab: cfg.vocabSize,
      maxRows: size.slots,
      resultStride: resultStride(cfg),
      blocksPerRow: profile.samplerBlocks,
      headParts: this.lmHead.argmaxPairs || undefined,
    });
    this.sampler.bind(s.logits, s.sampleParams, s.positions, s.tokens, s.result, s.headParts ?? undefined);
    this.resultSlots = cfg.routingLayers.length
      ? new ResultSlots(kernels, {
        plainLayers: cfg.numLayers - cfg.routingLayers.length,
        routeWords: routeWords(cfg),
        stride: resultStride(cfg),
      }, s)
      : null;
    this.logprob = s.scoring
      ? new Logprob(
        kernels,
        cfg.vocabSize,
        { step: s.step, logits: s.logits, ...s.scoring },
        profile.normWorkgroup,
      )
      : null;
  }

  /** One-row steps run each RMSNorm once into a row texture that the matmuls after it read. */
  get normsToTexture(): boolean {
    return this.state.xnTexture !== null;
  }

  /**
   * Records one step over `nRows` rows; `nOut` of them (listed in outRows) get logits, then a sampled token
   * ("sample"), their targets' log-probabilities ("score"), or nothing more ("logits": tests read them). A DMTD
   * step says how it runs its two layer groups (`dmtd`).
   */
  encode(
    pass: ComputeRecorder,
    nRows: number,
    nOut: number,
    output: StepOutput = "sample",
    dmtd?: DmtdShape,
  ): void {
    this.applyThreshold();
    // x = the layers of the step (embedding first), layer by layer
    this.stack.encode(pass, nRows, this.routing, dmtd);
    if (nOut === 0) return;
    // logits = lm_head(norm(x)) for the output rows
    this.finalNorm.encode(pass, nOut);
    this.lmHead.encode(pass, nOut);
    if (output === "score") {
      if (!this.logprob) {
        throw new Error("this engine was loaded without scoring rows (EngineOptions.scoreRows)");
      }
      this.logprob.encode(pass, nOut);
      return;
    }
    if (output === "logits") return;
    // the next token of each output row, sampled on the GPU (one row: from the LM head's argmax pairs)
    this.sampler.encode(pass, nOut, this.greedy);
    this.resultSlots?.encode(pass, nOut);
    this.stack.afterSampling?.(pass, nOut);
  }

  /** Writes a changed threshold into the gates' parameters (queue-ordered with the steps). */
  private applyThreshold(): void {
    const t = this.routing.threshold;
    if (t === this.appliedThreshold) return;
    for (const gate of this.gates) gate.setThreshold(t);
    this.appliedThreshold = t;
  }
}
