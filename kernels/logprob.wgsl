// Log-likelihood of a target token per output row (scoring: `flexidepth eval`):
//   score[j] = (log_softmax(logits[j])[target[j]], 1 when target[j] is the argmax — ties to the lowest id)
// for j < step.n_out. One workgroup per row: each invocation walks a strided slice of the vocabulary keeping its
// max (as an order key, lib/sort_key.wgsl) and lowest argmax, then Σ exp(l − max); a tree in workgroup memory
// combines them. Grid: (n_out).

//! use lib/step.wgsl
//! use lib/sort_key.wgsl

struct LogprobParams {
  vocab: u32,
  pad0: u32,
  pad1: u32,
  pad2: u32,
}

@group(0) @binding(0) var<uniform> params: LogprobParams;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read> logits: array<f32>;
@group(0) @binding(3) var<storage, read> targets: array<u32>;
@group(0) @binding(4) var<storage, read_write> score: array<vec2<u32>>;

override WG: u32 = 64u;

var<workgroup> best_key: array<u32, WG>;
var<workgroup> best_id: array<u32, WG>;
var<workgroup> mass: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let j = wid.x;
  if (j >= step.n_out) { return; }
  let base = j * params.vocab;
  var k = 0u;
  var id = 0xffffffffu;
  for (var i = li; i < params.vocab; i += WG) {
    let ki = f2key(logits[base + i]);
    if (id == 0xffffffffu || ki > k) {
      k = ki;
      id = i;
    }
  }
  best_key[li] = k;
  best_id[li] = id;
  workgroupBarrier();
  for (var off = WG / 2u; off > 0u; off >>= 1u) {
    if (li < off) {
      let ko = best_key[li + off];
      let io = best_id[li + off];
      if (io != 0xffffffffu && (best_id[li] == 0xffffffffu || ko > best_key[li] || (ko == best_key[li] && io < best_id[li]))) {
        best_key[li] = ko;
        best_id[li] = io;
      }
    }
    workgroupBarrier();
  }
  let m = key2f(best_key[0]);
  var s = 0.0;
  for (var i = li; i < params.vocab; i += WG) { s += exp(logits[base + i] - m); }
  mass[li] = s;
  workgroupBarrier();
  for (var off = WG / 2u; off > 0u; off >>= 1u) {
    if (li < off) { mass[li] += mass[li + off]; }
    workgroupBarrier();
  }
  if (li == 0u) {
    let t = targets[j];
    let lp = logits[base + t] - m - log(mass[0]);
    score[j] = vec2<u32>(bitcast<u32>(lp), select(0u, 1u, best_id[0] == t));
  }
}
