// The decoding layers' input of a DMTD step from the thinking layers' output t (in x) and the embedding e:
//   x[i] = a_i · x[src_i] + b_i · e[src_i]    for i < mix.count
// with (a, b) = (1, 1) for e + t (a cycle head, a prompt row as the released code runs it), (0, 1) for e alone
// (a row between heads, when a step scores every row teacher-forced), (1, 0) for t alone. A head of a generated
// sequence takes the refill block's last row into row 0, where its one decoding row runs (src = block rows − 1);
// every other use maps row i to itself. Each invocation reads and writes one column of one row, so row 0 may be
// written from a later row without a race. Grid: (ceil(width / WG), count).

struct MixParams {
  width: u32,
  pad0: u32,
  pad1: u32,
  pad2: u32,
}

struct MixRow {
  src: u32,
  a: f32,
  b: f32,
  pad: u32,
}

// Written per step by the host.
struct Mix {
  count: u32,
  pad0: u32,
  pad1: u32,
  pad2: u32,
  rows: array<MixRow>,
}

@group(0) @binding(0) var<uniform> params: MixParams;
@group(0) @binding(1) var<storage, read> mix: Mix;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<storage, read> e: array<f32>;

const WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y;
  let c = gid.x;
  if (i >= mix.count || c >= params.width) { return; }
  let r = mix.rows[i];
  let at = r.src * params.width + c;
  x[i * params.width + c] = r.a * x[at] + r.b * e[at];
}
