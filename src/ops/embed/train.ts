/**
 * Training embedding (kernels/embed_train.wgsl, embed_backward.wgsl) over a table [vocab, hidden] — f32, or a
 * frozen one in its checkpoint's F16 / BF16, which has no backward: the forward gathers rows by token (widened
 * to f32); the backward adds each row's gradient into its token's row of dE without float atomics — the host,
 * which has the batch's tokens, groups the rows by token (a CSR index written into a preallocated buffer by
 * `setTokens`) and each column of each distinct token sums its rows in a fixed order.
 */

import type { KernelCache } from "../../gpu/kernels.ts";
import { type DType, DTYPE_BYTES, DTYPE_CODE } from "../../model/dtype.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { bufferFrom } from "../../gpu/buffers.ts";
import { bindKernel, type Dispatch } from "../op.ts";
import { MAX_GROUPS_X, needElements, needFloats, paramsBuffer, recordFlat } from "../train_op.ts";

export interface EmbeddingTrainIO {
  /** u32 [rows]: written by `setTokens`. */
  tokens: GPUBuffer;
  /** [vocab, hidden], of `tableType` (default F32). */
  table: GPUBuffer;
  tableType?: DType;
  /** f32 [rows, hidden]: overwritten by the forward. */
  x: GPUBuffer;
  dx: GPUBuffer;
  /** f32 [vocab, hidden]: added to by the backward (null: a frozen table, no backward). */
  dTable: GPUBuffer | null;
}

export interface EmbeddingTrainShape {
  /** Rows of a batch (B · T). */
  rows: number;
  hidden: number;
  vocab: number;
  /** Threads per workgroup striding over hidden. */
  workgroup: number;
}

/** Words of the CSR index for `rows` rows (embed_backward.wgsl's layout). */
export const csrWords = (rows: number) => 5 + 3 * rows;

/**
 * The CSR index of a batch's tokens into `out` (csrWords(rows) words): the distinct tokens in increasing
 * order, each with its rows in increasing order. `order` is scratch of `rows` entries. Returns D.
 */
export function buildCsr(
  tokens: ArrayLike<number>,
  rows: number,
  out: Uint32Array,
  order: Uint32Array,
): number {
  const list = order.subarray(0, rows);
  for (let r = 0; r < rows; r++) list[r] = r;
  list.sort((a, b) => tokens[a] - tokens[b] || a - b);
  out.fill(0);
  let d = 0;
  for (let j = 0; j < rows; j++) {
    const t = tokens[list[j]];
    if (j === 0 || t !== tokens[list[j - 1]]) {
      out[4 + d] = t;
      out[4 + rows + d] = j;
      d++;
    }
    out[5 + 2 * rows + j] = list[j];
  }
  out[4 + rows + d] = rows;
  out[0] = d;
  return d;
}

/** The most rows any token of a CSR index holds. */
function mostRows(csr: Uint32Array, rows: number, distinct: number): number {
  let most = 0;
  for (let u = 0; u < distinct; u++) most = Math.max(most, csr[5 + rows + u] - csr[4 + rows + u]);
  return most;
}

export class EmbeddingTrain {
  private readonly fwd: Dispatch;
  private readonly bwd: Dispatch | null;
  private readonly index: GPUBuffer;
  private readonly csr: Uint32Array<ArrayBuffer>;
  private readonly order: Uint32Array;
  private distinct = 0;

  constructor(kernels: KernelCache, readonly io: EmbeddingTrainIO, readonly shape: EmbeddingTrainShape) {
    const { rows, hidden, vocab, workgroup: WG } = shape;
    const op = `embedding ${vocab}×${hidden}, ${rows} rows`;
    needFloats(op, "x", io.x, rows * hidden);
    needFloats(op, "dx", io.dx, rows * hidden);
    const type = io.tableType ?? "F32";
    needElements(op, "table", io.table, vocab * hidden, DTYPE_BYTES[type]);
    if (io.dTable) needFloats(op, "dTable", io.dTable, vocab * hidden);
    needFloats(op, "tokens", io.tokens, rows);
    const device = kernels.gpu.device;
    this.csr = new Uint32Array(csrWords(rows));
    this.order = new Uint32Array(rows);
    this.index = bufferFrom(device, "embedding csr", this.csr);
    const params = paramsBuffer(device, "embed_train", [["u32", rows], ["u32", hidden], ["u32", vocab]]);
    const fwd = { WG, T_DTYPE: DTYPE_CODE[type] };
    this.fwd = bindKernel(kernels, "embed_train", fwd, [params, io.tokens, io.table, io.x]);
    this.bwd = io.dTable
      ? bindKernel(kernels, "embed_backward", { WG }, [params, this.index, io.dx, io.dTable])
      : null;
  }

  /** A batch's tokens (rows of them, each < vocab): writes them and their CSR index. Returns D. */
  setTokens(queue: GPUQueue, tokens: Uint32Array): number {
    const { rows, vocab } = this.shape;
    if (tokens.length !== rows) throw new Error(`embedding: ${tokens.length} tokens for ${rows} rows`);
    const bad = tokens.findIndex((t) => t >= vocab);
    if (bad >= 0) {
      throw new Error(`embedding: token ${tokens[bad]} at row ${bad} is past the vocabulary (${vocab})`);
    }
    this.distinct = buildCsr(tokens, rows, this.csr, this.order);
    const most = mostRows(this.csr, rows, this.distinct);
    // An invocation loops over its token's rows, and llvmpipe ends a kernel's loops after 65535 iterations.
    if (most > 65535) throw new Error(`embedding: a token on ${most} rows of one batch (at most 65535)`);
    queue.writeBuffer(this.io.tokens, 0, tokens as Uint32Array<ArrayBuffer>);
    queue.writeBuffer(this.index, 0, this.csr);
    return this.distinct;
  }

  /** One workgroup per row. */
  forward(pass: ComputeRecorder): void {
    recordFlat(pass, this.fwd, this.shape.rows);
  }

  /** Per distinct token of the last `setTokens`, one invocation per column (a frozen table: nothing). */
  backward(pass: ComputeRecorder): void {
    const d = this.distinct;
    if (d === 0 || !this.bwd) return;
    const y = Math.min(d, MAX_GROUPS_X);
    pass.setPipeline(this.bwd.kernel);
    pass.setBindGroup(0, this.bwd.group);
    pass.dispatchWorkgroups(Math.ceil(this.shape.hidden / this.shape.workgroup), y, Math.ceil(d / y));
  }
}
