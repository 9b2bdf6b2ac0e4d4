// FlexiDepth's gate in the training forward, for one routed layer's n rows: g = sigmoid(logit) into the
// layer's place of the gates [layers, n] (what the skip loss reads), the hard route m = g > threshold (strict,
// as released) and the two branch scales, sm = m · g (the MLP's) and sa = (1 − m) · (1 − g) (the adapter's).
// A select, not a branch (llvmpipe runs both sides of a branch). The backward is route_gate_backward.wgsl.
// Bindings: 0 params, 1 logit [n], 2 gates [layers · n], 3 m [n], 4 sm [n], 5 sa [n]. Grid: ceil(n / WG).

struct Params {
  n: u32,
  offset: u32, // the layer's first element in gates: l · n
  threshold: f32,
  pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logit: array<f32>;
@group(0) @binding(2) var<storage, read_write> gates: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> sm: array<f32>;
@group(0) @binding(5) var<storage, read_write> sa: array<f32>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x;
  if (t >= params.n) {
    return;
  }
  let g = 1.0 / (1.0 + exp(-logit[t]));
  let run = select(0.0, 1.0, g > params.threshold);
  gates[params.offset + t] = g;
  m[t] = run;
  sm[t] = run * g;
  sa[t] = (1.0 - run) * (1.0 - g);
}
