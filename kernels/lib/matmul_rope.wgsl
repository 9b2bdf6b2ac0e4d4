// The ROPE epilogue of the matmul kernels (flag bit 6), so that RoPE and the KV write need no kernel of their
// own. The matrix is the attention projection [q (q_rows); k (kv_dim); v (kv_dim); extra] with each head's q and
// k rows stored as rotation pairs — row 2i holds the head's dimension i and row 2i + 1 dimension
// i + head_dim / 2 (src/engine/matmul.ts ropePairRows; q · k is unchanged when both use the same order). q and
// k are rotated at the activation row's position; q goes to y (column = matrix row), k and v straight into
// the KV cache at (slot, pos), and any rows after v (a FlexiDepth router's W_enc) to y as they are.

//! use lib/matmul_bindings.wgsl

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

// Value e of matrix row m (of the whole matrix, in this part), activation row n, to y or the KV cache (from
// `cache`, the row's cache_base).
fn qkv_store(n: u32, m: u32, cache: u32, e: f32) {
  let q_rows = params.q_rows;
  let kv = params.kv_dim;
  if (m < q_rows || m >= q_rows + 2u * kv) {
    y[n * params.y_stride + m] = e;
  } else if (m < q_rows + kv) {
    k_cache[cache + m - q_rows] = e;
  } else {
    v_cache[cache + m - q_rows - kv] = e;
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
// there; matmul.wgsl and gemv_tex.wgsl keep their loops around qkv_store, for the same reason).
fn rope_store(n: u32, gm: u32, v_in: vec4<f32>) {
  let row = rows[n];
  let v = rope_rotate4(row, gm, v_in);
  let cache = cache_base(row);
  let q_rows = params.q_rows;
  let kv = params.kv_dim;
  for (var j = 0u; j < 4u; j++) {
    let m = gm + j;
    if (m - params.out_offset >= params.rows) {
      return;
    }
    if (m < q_rows) {
      y[n * params.y_stride + m] = v[j];
    } else if (m < q_rows + kv) {
      k_cache[cache + m - q_rows] = v[j];
    } else if (m < q_rows + 2u * kv) {
      v_cache[cache + m - q_rows - kv] = v[j];
    } else {
      y[n * params.y_stride + m] = v[j];
    }
  }
}
