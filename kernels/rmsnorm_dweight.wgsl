// Training RMSNorm backward, weight gradient, pass 1 of 2: partial[c, k] = Σ_r dy[r, k] · x[r, k] · rstd[r]
// over the rows r of chunk c (rows c · chunk_rows .. + chunk_rows), overwritten; rmsnorm_dweight_sum.wgsl then
// adds the chunks into dweight in order. Two passes rather than one invocation per column looping over every
// row: that filled only `width` invocations, and llvmpipe stops a loop after 65535 iterations in all — counted
// over every entry of a nested loop too (65 600 per-head rows lost their last 67).
// Bindings: 0 params {rows, width, chunk_rows}, 1 x, 2 dy, 3 rstd, 4 partial (f32 [chunks, width]).
// Grid: (ceil(width / WG), chunks), one column of one chunk per invocation.

struct Params { rows: u32, width: u32, chunk_rows: u32, pad: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> rstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> partial: array<f32>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let k = gid.x;
  let w = params.width;
  if (k >= w) {
    return;
  }
  let c = gid.y;
  let first = c * params.chunk_rows;
  let end = min(first + params.chunk_rows, params.rows);
  var s = 0.0;
  for (var r = first; r < end; r++) {
    s += dy[r * w + k] * x[r * w + k] * rstd[r];
  }
  partial[c * w + k] = s;
}
