// The decoding layers' input of a DMTD step from the thinking layers' output t (in x) and the embedding e:
//   x[i] = x[src + i] + e[src + i]    for i < mix.count
// A prompt chunk adds every row in place (src 0, count = rows); a head takes the refill block's last row into
// row 0, where the one decoding row runs (src = block rows − 1, count 1). Each invocation reads and writes one
// column of one row, so row 0 may be written from a later row without a race.
// Grid: (ceil(width / WG), count).

struct AddParams {
  width: u32,
  pad0: u32,
  pad1: u32,
  pad2: u32,
}

// Written per step by the host.
struct Mix {
  src: u32,
  count: u32,
  pad0: u32,
  pad1: u32,
}

@group(0) @binding(0) var<uniform> params: AddParams;
@group(0) @binding(1) var<storage, read> mix: Mix;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<storage, read> e: array<f32>;

const WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y;
  let c = gid.x;
  if (i >= mix.count || c >= params.width) { return; }
  let at = (mix.src + i) * params.width + c;
  x[i * params.width + c] = x[at] + e[at];
}
