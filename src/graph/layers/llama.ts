/**
 * A Llama decoder layer (and a Qwen2/2.5 or Qwen3 one, the same but for its heads):
 *   x += o_proj(attention(rope(q), K, V)),  [q; k; v] = W_qkv · input_layernorm(x), this step's K/V cached
 *   x += down(silu(gate(y)) · up(y)),       y = post_attention_layernorm(x)
 * RMSNorms are fused into the matmuls that read them, SiLU(gate) · up into the matmul that computes gate and
 * up, RoPE and the KV write into the q/k/v matmul (where the weights are in rotation pairs), the residual adds
 * into o_proj and down: five dispatches (six with split attention). Qwen2's q/k/v biases and Qwen3's per-head
 * q/k RMSNorm come before RoPE, in the kernel that then ropes and writes K/V (`ropeKv`): one more dispatch.
 */

import type { ComputeRecorder } from "../../gpu/profiler.ts";
import type { StepOp } from "../../ops/op.ts";
import type { LayerWeights } from "../weights.ts";
import type { LayerBuilder, LayerUnit, RoutingMode } from "../layer_builder.ts";

export class LlamaLayer implements LayerUnit {
  private readonly inNorm: StepOp;
  private readonly qkv: StepOp;
  private readonly ropeKv: StepOp;
  private readonly attention: StepOp;
  private readonly o: StepOp;
  private readonly postNorm: StepOp;
  private readonly gateUp: StepOp;
  private readonly down: StepOp;

  constructor(b: LayerBuilder, L: LayerWeights, l: number) {
    const s = b.state, { qDim, kvDim } = b;
    const stride = qDim + 2 * kvDim;
    const fromTexture = { xTexture: s.xnTexture };
    this.inNorm = b.rowNorm(L.inputNorm);
    this.qkv = b.matmul(
      L.qkv,
      s.x,
      s.qkv,
      s.step,
      b.projection(L.inputNorm, l, s.rows, qDim, kvDim),
      fromTexture,
    );
    this.ropeKv = b.ropeKv(L, l, s.step, s.rows, s.qkv, { stride, q: 0, k: qDim, v: qDim + kvDim });
    this.attention = b.attention(l, s.step, s.rows, s.qkv, stride);
    this.o = b.matmul(L.o, s.att, s.x, s.step, { accumulate: true });
    this.postNorm = b.rowNorm(L.postNorm);
    this.gateUp = b.matmul(L.gateUp, s.x, s.act, s.step, b.mlp(L.postNorm), fromTexture);
    this.down = b.matmul(L.down, s.act, s.x, s.step, { accumulate: true });
  }

  encode(pass: ComputeRecorder, n: number, _routing?: RoutingMode, outRows = n): void {
    // Attention block (a step of few rows on a wide model first normalizes x into a row texture); K/V of every
    // row, the rest of the layer for the rows whose output is read.
    this.inNorm.encode(pass, n);
    this.qkv.encode(pass, n);
    this.ropeKv.encode(pass, n);
    this.attention.encode(pass, outRows);
    this.o.encode(pass, outRows);
    // MLP block.
    this.postNorm.encode(pass, outRows);
    this.gateUp.encode(pass, outRows);
    this.down.encode(pass, outRows);
  }
}
