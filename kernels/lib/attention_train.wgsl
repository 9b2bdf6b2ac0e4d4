// What the training attention kernels share (attention_train, attention_train_dq, attention_train_dkv,
// attention_train_dkv_sum): their parameters and the layout of their buffers. Activations are rows r = b · seq_len + t of a batch of sequences;
// q, out, dq, dout [rows, n_heads · head_dim], k, v, dk, dv [rows, n_kv · head_dim], lse and delta
// [rows, n_heads], read as vec4s (head_dim a multiple of 4: the kernels' HD4 = head_dim / 4, at most MAX_HD4).
// Query head h reads KV head h / (n_heads / n_kv). Scores are scale · q · k, causal within a sequence.
// Each kernel's workgroup takes 2 · WG consecutive positions of one (sequence, head) — two per invocation,
// t0 + li and t0 + WG + li, no barriers — and loops over the other side's positions up to a bound the whole
// workgroup shares, masking the positions outside each invocation's own with a select (llvmpipe runs both
// sides of a branch anyway). Two positions per invocation share each load of the other side's row: on
// llvmpipe a storage load is a loop over the SIMD lanes and dominates the time (lavapipe, B=4, T=128, 8 / 2
// heads of 32, paired medians of 9 alternating rounds: forward and backward took 0.63× the time of one
// position per invocation; B=2, 4 / 2 heads of 128: 0.72×).
// llvmpipe stops an invocation after 65535 loop passes of all its loops together (a loop's run costs its
// iterations + 1), and the loops over head_dim / 4 count where it does not unroll them (hd 128): each kernel's
// invocation makes at most T · (2 · HD4 + 3) + 3 · HD4 + 4, which the host keeps within the limit (T ≤ 976 at
// head_dim 128), and a query head's share of dk / dv is an invocation of its own, summed afterwards.

struct TrainAttentionParams {
  n_rows: u32, // B · seq_len
  seq_len: u32,
  n_heads: u32,
  n_kv: u32,
  scale: f32,
  pad0: u32,
  pad1: u32,
  pad2: u32,
}

const MAX_HD4: u32 = 32u;
const NEG_BIG: f32 = -3.0e38;
