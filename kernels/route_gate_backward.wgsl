// The backward of route_gate_train.wgsl for one routed layer: g's gradient is what the skip loss added
// (dgates, [layers, n]) plus its two scales' — sm = m · g gives m · dsm, sa = (1 − m)(1 − g) gives
// −(1 − m) · dsa; the mask has none — and through the sigmoid dlogit = dg · g · (1 − g) (overwritten).
// Bindings: 0 params, 1 gates, 2 m, 3 dsm, 4 dsa, 5 dgates, 6 dlogit [n]. Grid: ceil(n / WG).

struct Params {
  n: u32,
  offset: u32,
  threshold: f32,
  pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gates: array<f32>;
@group(0) @binding(2) var<storage, read> m: array<f32>;
@group(0) @binding(3) var<storage, read> dsm: array<f32>;
@group(0) @binding(4) var<storage, read> dsa: array<f32>;
@group(0) @binding(5) var<storage, read> dgates: array<f32>;
@group(0) @binding(6) var<storage, read_write> dlogit: array<f32>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x;
  if (t >= params.n) {
    return;
  }
  let i = params.offset + t;
  let g = gates[i];
  let run = m[t];
  let dg = dgates[i] + run * dsm[t] - (1.0 - run) * dsa[t];
  dlogit[t] = dg * g * (1.0 - g);
}
