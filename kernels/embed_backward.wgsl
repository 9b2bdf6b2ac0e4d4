// Training embedding backward: dE[token] += Σ dx[r] over the rows r that hold the token, deterministic
// without float atomics. The host, which has the batch's tokens, passes them grouped (CSR, one u32 buffer):
//   index[0]                       D, the distinct tokens of the batch
//   index[4 + u], u < D            distinct token u
//   index[4 + rows + u], u ≤ D     where its rows start in the list below (offsets, D + 1 of them)
//   index[5 + 2 · rows + j]        the rows, token by token, each token's in increasing order
// Invocation (k, u) sums column k of distinct token u's rows in list order, so the result does not depend on
// scheduling; one loop over the rows only, because llvmpipe stops a kernel's loops after 65535 iterations in
// all (a loop over columns around it would have cut a frequent token short). dE accumulates (a parameter
// gradient; a tied LM head adds its own).
// Bindings: 0 params {rows (capacity of the index), hidden}, 1 index, 2 dx (f32 [rows, hidden]), 3 dE.
// Grid: (ceil(hidden / WG), D split over y and z as ≤ 65535 · ceil(D / 65535)).

struct Params { rows: u32, hidden: u32, pad0: u32, pad1: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> index: array<u32>;
@group(0) @binding(2) var<storage, read> dx: array<f32>;
@group(0) @binding(3) var<storage, read_write> d_table: array<f32>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let u = wid.y + wid.z * nwg.y;
  let k = wid.x * WG + li;
  let h = params.hidden;
  if (u >= index[0] || k >= h) {
    return;
  }
  let R = params.rows;
  let token = index[4u + u];
  let end = index[5u + R + u];
  let list = 5u + 2u * R;
  var s = 0.0;
  for (var j = index[4u + R + u]; j < end; j++) {
    s += dx[index[list + j] * h + k];
  }
  d_table[token * h + k] += s;
}
