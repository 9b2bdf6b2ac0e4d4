// Gather rows into a dense block: dst[i, :] = src[idx[i], :] for i < count.n_rows.
// Bindings, words and grid: lib/row_copy.wgsl.

//! use lib/row_copy.wgsl

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y;
  let c = gid.x;
  if (i >= count.n_rows || c >= params.width) { return; }
  dst[i * params.width + c] = src[idx[i] * params.width + c];
}
