// Writing the KV cache (layout in lib/kv_read.wgsl): values rounded once to the cache's type. Writers choose
// by a runtime flag, passed as `f16`, and store branch-free: the matmul ROPE epilogue shares its pipelines
// with every other matmul, and llvmpipe runs both sides of a branch.

// Where and what to store for elements i and i + 1 (i even) holding e: two f32 words at i and i + 1, or one
// word of two f16 at i / 2 — the same word and value twice — so a writer stores `at.x` then `at.y`.
struct KvPair {
  at: vec2<u32>,
  bits: vec2<u32>,
}

fn kv_pair(i: u32, e: vec2<f32>, f16: bool) -> KvPair {
  let at = select(vec2<u32>(i, i + 1u), vec2<u32>(i >> 1u), f16);
  return KvPair(at, select(bitcast<vec2<u32>>(e), vec2<u32>(pack2x16float(e)), f16));
}
