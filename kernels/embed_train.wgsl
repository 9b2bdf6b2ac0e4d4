// Training embedding forward: x[r, :] = E[tokens[r], :] from an f32 table E [vocab, hidden] (zeros for a
// token past the table). x is overwritten. The backward is embed_backward.wgsl.
// Bindings: 0 params {rows, hidden, vocab}, 1 tokens (u32 [rows]), 2 table, 3 x (f32 [rows, hidden]).
// Grid: rows workgroups (flat, lib/grid.wgsl); WG threads stride over the row.

//! use lib/grid.wgsl

struct Params { rows: u32, hidden: u32, vocab: u32, pad: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

override WG: u32 = 64u;

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
    x[r * h + k] = select(0.0, table[src + k], ok);
  }
}
