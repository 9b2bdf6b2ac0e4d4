// Training RMSNorm backward, weight gradient, pass 2 of 2 (after rmsnorm_dweight.wgsl): dweight[k] +=
// Σ_c partial[c, k] over the chunks in order (always accumulated: a parameter gradient; deterministic).
// Bindings: 0 params {chunks, width}, 1 partial (f32 [chunks, width]), 2 dweight. Grid: ceil(width / WG).

struct Params { chunks: u32, width: u32, pad0: u32, pad1: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> dweight: array<f32>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let k = gid.x;
  let w = params.width;
  if (k >= w) {
    return;
  }
  var s = 0.0;
  for (var c = 0u; c < params.chunks; c++) {
    s += partial[c * w + k];
  }
  dweight[k] += s;
}
