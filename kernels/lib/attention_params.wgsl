// The parameters of the attention kernels (attention, attention_serial, attention_split, attention_merge), as
// src/engine/forward.ts writes them: q is read from rows of stride q_stride (the projection output it shares
// with k and v); the KV cache holds ctx positions per slot of n_kv × head_dim values.

struct AttentionParams {
  n_heads: u32,
  n_kv: u32,
  head_dim: u32,
  ctx: u32,
  scale: f32, // on q · k
  q_stride: u32,
  n_chunks: u32, // attention_split / attention_merge: chunks of the context per head and row
  pad: u32,
}
