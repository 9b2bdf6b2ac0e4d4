// Fills each output's result slot after sampling: [token id (written by the sampler), layers used,
// route words]. layers = non-routed layers + kept routed layers (popcount of the route bits).
// Grid: (1). One invocation per output row.

//! use lib/step.wgsl

struct Params { non_routed: u32, words: u32, stride: u32, pad0: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read> out_rows: array<u32>;
@group(0) @binding(3) var<storage, read> routes: array<u32>;
@group(0) @binding(4) var<storage, read_write> result: array<u32>;

const WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = gid.x;
  if (j >= step.n_out) { return; }
  let r = out_rows[j];
  var kept = 0u;
  for (var w = 0u; w < params.words; w++) {
    let bits = routes[r * params.words + w];
    result[j * params.stride + 2u + w] = bits;
    kept += countOneBits(bits);
  }
  result[j * params.stride + 1u] = params.non_routed + kept;
}
