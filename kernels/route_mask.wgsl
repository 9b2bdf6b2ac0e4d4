// FlexiDepth's hard routing mask for the training forward: m_t = 1 where the gate g_t > threshold (strict, as
// released), else 0 — one routed layer's n gates (g[offset ..]) to the same place of an f32 mask (overwritten).
// No gradient flows through the mask: g gets its gradient through the MLP × g and adapter × (1 − g) scales and
// through the skip loss (skip_loss.wgsl). A select, not a branch (llvmpipe runs both sides of a branch).
// Grid: (ceil(n / WG)).

struct Params {
  n: u32,
  offset: u32, // the layer's first element in g and mask ([layers, n] buffers: l · n)
  threshold: f32,
  pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> mask: array<f32>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x;
  if (t >= params.n) { return; }
  let i = params.offset + t;
  mask[i] = select(0.0, 1.0, g[i] > params.threshold);
}
