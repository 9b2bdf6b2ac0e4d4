// Causal grouped-query attention for training, backward part 3 where a KV head serves several query heads:
// dk and dv of each row and KV head (overwritten) = the sum of its group's query-head shares that
// attention_train_dkv left in dk_part / dv_part, in head order (deterministic). One invocation per vec4 of
// dk / dv, over a 2-D grid of workgroups (a dimension holds at most 65535).
// Layout: lib/attention_train.wgsl. Grid: (x, y) with x · y ≥ ceil(n_rows · n_kv · HD4 / WG).

//! use lib/attention_train.wgsl

@group(0) @binding(0) var<uniform> params: TrainAttentionParams;
@group(0) @binding(1) var<storage, read> dk_part: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> dv_part: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dk: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> dv: array<vec4<f32>>;

override WG: u32 = 64u;
override HD4: u32 = 2u;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let e = (wid.y * groups.x + wid.x) * WG + li; // (row · n_kv + kv head) · HD4 + d
  let per_row = params.n_kv * HD4;
  let r = e / per_row;
  if (r >= params.n_rows) { return; }
  let group = params.n_heads / params.n_kv;
  let within = e - r * per_row; // kv head · HD4 + d
  let kvh = within / HD4;
  let d = within - kvh * HD4;
  let first = (r * params.n_heads + kvh * group) * HD4 + d;
  var sk = vec4<f32>(0.0);
  var sv = vec4<f32>(0.0);
  for (var hh = 0u; hh < group; hh++) {
    sk += dk_part[first + hh * HD4];
    sv += dv_part[first + hh * HD4];
  }
  dk[e] = sk;
  dv[e] = sv;
}
