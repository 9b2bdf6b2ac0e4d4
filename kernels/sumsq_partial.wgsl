// The global gradient norm, pass 1 (pass 2: grad_norm.wgsl): partial sums of squares of one gradient buffer.
// Workgroup w of `groups` sums g[i]² for i = w · WG + li + j · groups · WG (a fixed stride: each thread's
// terms and the tree after them are always added in the same order) and writes partials[base + w]
// (overwritten). One dispatch per gradient buffer, each with its own base, so one norm covers every gradient.
// Bindings: 0 params {n, base, groups}, 1 g (f32 [n]), 2 partials. Grid: groups workgroups (≤ 65535; the host
// picks enough that no thread loops more than 65535 times, llvmpipe's limit).

//! use lib/row_reduce.wgsl

struct Params { n: u32, base: u32, groups: u32, pad: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let stride = params.groups * WG;
  var s = 0.0;
  for (var i = wid.x * WG + li; i < params.n; i += stride) {
    let v = g[i];
    s += v * v;
  }
  s = row_sum(li, s);
  if (li == 0u) {
    partials[params.base + wid.x] = s;
  }
}
