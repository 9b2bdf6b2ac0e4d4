// Training embedding forward: x[r, :] = E[tokens[r], :] from a table E [vocab, hidden] (zeros for a token past
// the table). x is overwritten. The backward is embed_backward.wgsl.
// Bindings: 0 params {rows, hidden, vocab}, 1 tokens (u32 [rows]), 2 table (u32 words), 3 x (f32 [rows, hidden]).
// Override T_DTYPE (src/model/dtype.ts's DTYPE_CODE): 0 the table is f32; 1 f16 or 2 bf16 (a frozen table kept
// in its checkpoint's dtype), two to a word as lib/packed16.wgsl reads them.
// Grid: rows workgroups (flat, lib/grid.wgsl); WG threads stride over the row.

//! use lib/grid.wgsl
//! use lib/packed16.wgsl

struct Params { rows: u32, hidden: u32, vocab: u32, pad: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<u32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

override WG: u32 = 64u;
override T_DTYPE: u32 = 0u;

// Element e of the table.
fn entry(e: u32) -> f32 {
  if (T_DTYPE == 0u) {
    return bitcast<f32>(table[e]);
  }
  return unpack16(table[e >> 1u], e, T_DTYPE);
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let r = flat_group(wid, nwg);
  if (r >= params.rows) {
    return;
  }
  let h = params.hidden;
  let t = tokens[r];
  let ok = t < params.vocab;
  let src = select(0u, t, ok) * h;
  for (var k = li; k < h; k += WG) {
    x[r * h + k] = select(0.0, entry(src + k), ok);
  }
}
