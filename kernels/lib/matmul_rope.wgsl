// The ROPE epilogue of the matmul kernels (flag bit 6), so that RoPE and the KV write need no kernel of their
// own. The matrix is the attention projection [q (q_rows); k (kv_dim); v (kv_dim); extra] with each head's q and
// k rows stored as rotation pairs — row 2i holds the head's dimension i and row 2i + 1 dimension
// i + head_dim / 2 (src/engine/matmul.ts ropePairRows; q · k is unchanged when both use the same order). q and
// k are rotated at the activation row's position; q goes to y (column = matrix row), k and v straight into
// the KV cache at (slot, pos) (f32, or f16 under flag bit 7 KV16), and any rows after v (a FlexiDepth router's
// W_enc) to y as they are.

//! use lib/matmul_bindings.wgsl
//! use lib/matmul_flags.wgsl
//! use lib/kv_write.wgsl

// (a, b) rotated by c = (cos, sin).
fn rotate(v: vec2<f32>, c: vec2<f32>) -> vec2<f32> {
  return vec2<f32>(v.x * c.x - v.y * c.y, v.y * c.x + v.x * c.y);
}

// Index in cos_sin of the rotation pair at matrix row gm (even) and position pos.
fn rope_angle(pos: u32, gm: u32) -> u32 {
  return pos * (params.head_dim / 2u) + (gm % params.head_dim) / 2u;
}

// The first element of an activation row's position in the KV cache.
fn cache_base(row: Row) -> u32 {
  return (row.slot * params.ctx + row.pos) * params.kv_dim;
}

// Values e of matrix rows m and m + 1 (m even; m + 1 inside the part when `live1`), activation row n, to y or
// the KV cache (from `cache`, the row's cache_base) as f32 or f16 (KV16). q_rows, kv_dim and the parts' first
// rows are multiples of 4, so a pair of k or v rows is always whole and lies in one f16 word.
fn qkv_store(n: u32, m: u32, cache: u32, e: vec2<f32>, live1: bool) {
  let q_rows = params.q_rows;
  let kv = params.kv_dim;
  if (m < q_rows || m >= q_rows + 2u * kv) {
    y[n * params.y_stride + m] = e.x;
    if (live1) {
      y[n * params.y_stride + m + 1u] = e.y;
    }
  } else if (m < q_rows + kv) {
    let p = kv_pair(cache + m - q_rows, e, kv16());
    k_cache[p.at.x] = p.bits.x;
    k_cache[p.at.y] = p.bits.y;
  } else {
    let p = kv_pair(cache + m - q_rows - kv, e, kv16());
    v_cache[p.at.x] = p.bits.x;
    v_cache[p.at.y] = p.bits.y;
  }
}

// v_in rotated as the two rotation pairs at matrix rows gm .. gm + 3 (gm a multiple of 4) when they are rows of
// q or k, else as it is; at activation row `row`'s position.
fn rope_rotate4(row: Row, gm: u32, v_in: vec4<f32>) -> vec4<f32> {
  var v = v_in;
  if (gm < params.q_rows + params.kv_dim) {
    let t = rope_angle(row.pos, gm);
    v = vec4<f32>(rotate(v.xy, cos_sin[t]), rotate(v.zw, cos_sin[t + 1u]));
  }
  return v;
}

// Matrix rows gm .. gm + 3 of activation row n (gemm, gemm_tex): two rotation pairs of one head of q or k, or 4
// values of v or of the rows after it (head_dim, q_rows, kv_dim and gm multiples of 4). Its own four-way
// branch rather than qkv_store's three: gemm_tex ran 2-5% faster so on lavapipe (branches cost both sides
// there; matmul.wgsl and gemv_tex.wgsl keep their loops around qkv_store, for the same reason). Two rows a
// pass, so that k and v go to the cache in pairs (f16 words under KV16).
fn rope_store(n: u32, gm: u32, v_in: vec4<f32>) {
  let row = rows[n];
  let v = rope_rotate4(row, gm, v_in);
  let cache = cache_base(row);
  let q_rows = params.q_rows;
  let kv = params.kv_dim;
  let f16 = kv16();
  for (var j = 0u; j < 4u; j += 2u) {
    let m = gm + j;
    if (m - params.out_offset >= params.rows) {
      return;
    }
    let e = select(v.xy, v.zw, j == 2u);
    let live1 = m + 1u - params.out_offset < params.rows;
    if (m < q_rows) {
      y[n * params.y_stride + m] = e.x;
      y[n * params.y_stride + m + 1u] = e.y;
    } else if (m < q_rows + kv) {
      let p = kv_pair(cache + m - q_rows, e, f16);
      k_cache[p.at.x] = p.bits.x;
      k_cache[p.at.y] = p.bits.y;
    } else if (m < q_rows + 2u * kv) {
      let p = kv_pair(cache + m - q_rows - kv, e, f16);
      v_cache[p.at.x] = p.bits.x;
      v_cache[p.at.y] = p.bits.y;
    } else {
      y[n * params.y_stride + m] = e.x;
      if (live1) {
        y[n * params.y_stride + m + 1u] = e.y;
      }
    }
  }
}
