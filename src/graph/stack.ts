/**
 * The layers of a step between the token ids and the final norm: how a model kind turns a step's rows into
 * the hidden states the LM head reads. A plain or FlexiDepth model embeds the rows and runs every layer unit
 * on them (`SequentialStack`); a DMTD model runs two layer groups on a schedule (layers/dmtd.ts).
 */

import type { ComputeRecorder } from "../gpu/profiler.ts";
import type { StepOp } from "../ops/op.ts";
import type { LayerUnit, RoutingMode } from "./layer_builder.ts";

/** How a DMTD step runs its two layer groups (the engine has written their buffers). */
export interface DmtdShape {
  /** Rows of the thinking layers; 0: a non-head step, whose decoding layers run on the embedding alone. */
  thinkingRows: number;
  /**
   * The first rows of those whose thinking output is read (a refill block's head, put first; a prompt chunk's
   * every row; none before a prompt): the last thinking layer writes the other rows' K/V and computes no more.
   */
  thinkingOutRows: number;
  /** The thinking rows' tokens come from the GPU's token history (a refill block), not the step's tokens. */
  fromHistory: boolean;
  /** Rows of the mix table that make the decoding layers' input from the thinking output and the embedding. */
  mixRows: number;
  /** Stop after the thinking layers (a refill of positions before a prompt). */
  thinkingOnly: boolean;
}

export interface LayerStack {
  /** Records the step's layers over `nRows` rows (the decoding rows of a DMTD step). */
  encode(pass: ComputeRecorder, nRows: number, routing: RoutingMode, dmtd?: DmtdShape): void;
  /** After sampling `nOut` outputs (DMTD keeps the sampled tokens on the GPU). */
  afterSampling?(pass: ComputeRecorder, nOut: number): void;
}

/** x = embed(tokens), then every layer unit in order over the step's rows. */
export class SequentialStack implements LayerStack {
  constructor(private readonly embed: StepOp, private readonly layers: LayerUnit[]) {}

  encode(pass: ComputeRecorder, nRows: number, routing: RoutingMode): void {
    this.embed.encode(pass, nRows);
    for (const layer of this.layers) layer.encode(pass, nRows, routing);
  }
}
