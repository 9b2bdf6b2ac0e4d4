// Training RMSNorm backward, weight gradient: dweight[k] += Σ_r dy[r, k] · x[r, k] · rstd[r] (always
// accumulated: a parameter gradient). One invocation per column sums the rows in order (deterministic, no
// atomics); the row loop is split in two nested loops because llvmpipe ends any loop after 65535 iterations
// (per-head q/k norms have N · heads rows).
// Bindings: 0 params {rows, width}, 1 x, 2 dy, 3 rstd, 4 dweight. Grid: ceil(width / WG) workgroups.

struct Params { rows: u32, width: u32, pad0: u32, pad1: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> rstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> dweight: array<f32>;

override WG: u32 = 64u;
const CHUNK: u32 = 32768u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let k = gid.x;
  let w = params.width;
  if (k >= w) {
    return;
  }
  var s = 0.0;
  for (var r0 = 0u; r0 < params.rows; r0 += CHUNK) {
    for (var r = r0; r < min(r0 + CHUNK, params.rows); r++) {
      s += dy[r * w + k] * x[r * w + k] * rstd[r];
    }
  }
  dweight[k] += s;
}
