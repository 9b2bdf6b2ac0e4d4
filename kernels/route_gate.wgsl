// FlexiDepth gate of one routed layer, for every row of the step:
//   t = tanh(RMSNorm_r(e)) for the row's bottleneck e = W_enc · z, logit = w_logit · t (w_logit = W_head ·
//   W_dec, formed at load), g = sigmoid(logit) rounded to the checkpoint dtype; run = g > threshold (strict,
//   as released). The router's stages after W_enc live here rather than in a norm kernel and two matmuls: a
//   few bottleneck-long loops per row, and three dispatches fewer per routed layer.
// Sets this layer's route bit per row, and splits the rows into the kept list (full layer, MLP × g)
// and the skipped list (adapter × (1 − g)), each with its own row count, which the kernels of each
// branch read — so a skipped token's branch kernels exit before touching weights, with no host
// round-trip. FULL_DEPTH takes g = 1 for every row (the base model).
// One workgroup walks the rows in order (a step has at most a few hundred rows): deterministic lists. Its WG
// invocations share each row's two bottleneck-long sums (a tree in workgroup memory); WG = 1 on CPU
// software GPUs, where barriers cost more than the loops.

//! use lib/step.wgsl

// e of row r: enc[r * e_stride + e_offset ..][..width] (its own buffer, or columns of a stacked projection's output).
struct Params {
  threshold: f32,
  route_word: u32,
  route_bit: u32,
  words: u32,
  width: u32,
  eps: f32,
  e_stride: u32,
  e_offset: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read> enc: array<f32>; // W_enc · z per row (see Params)
@group(0) @binding(3) var<storage, read_write> routes: array<u32>;
@group(0) @binding(4) var<storage, read_write> kept_step: Step;
@group(0) @binding(5) var<storage, read_write> skip_step: Step;
@group(0) @binding(6) var<storage, read_write> kept_idx: array<u32>;
@group(0) @binding(7) var<storage, read_write> skip_idx: array<u32>;
@group(0) @binding(8) var<storage, read_write> kept_g: array<f32>;
@group(0) @binding(9) var<storage, read_write> skip_g: array<f32>;
@group(0) @binding(10) var<storage, read> w_logit: array<f32>; // [width]
@group(0) @binding(11) var<storage, read> norm_w: array<f32>; // router_norm, [width]

override W_DTYPE: u32 = 0u; // g is rounded to this dtype: 0 f32, 1 f16, 2 bf16
override FULL_DEPTH: bool = false;
override FIRST_ROUTED: bool = false; // the first routed layer of a step clears the route words

fn round_to_dtype(x: f32) -> f32 {
  if (W_DTYPE == 2u) {
    let b = bitcast<u32>(x);
    return bitcast<f32>((b + 0x7fffu + ((b >> 16u) & 1u)) & 0xffff0000u);
  }
  if (W_DTYPE == 1u) { return unpack2x16float(pack2x16float(vec2<f32>(x, 0.0))).x; }
  return x;
}

override WG: u32 = 1u; // a power of two

var<workgroup> red: array<f32, WG>;

// The sum of every invocation's v (all invocations get it).
fn workgroup_sum(li: u32, v: f32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  for (var off = WG / 2u; off > 0u; off >>= 1u) {
    if (li < off) { red[li] += red[li + off]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32) {
  let n = step.n_rows;
  var nk = 0u;
  var ns = 0u;
  for (var r = 0u; r < n; r++) {
    var g = 1.0;
    if (!FULL_DEPTH) {
      let e = r * params.e_stride + params.e_offset;
      var ss = 0.0;
      for (var i = li; i < params.width; i += WG) { ss += enc[e + i] * enc[e + i]; }
      let inv = inverseSqrt(workgroup_sum(li, ss) / f32(params.width) + params.eps);
      var logit = 0.0;
      for (var i = li; i < params.width; i += WG) { logit += w_logit[i] * tanh(enc[e + i] * inv * norm_w[i]); }
      g = round_to_dtype(1.0 / (1.0 + exp(-workgroup_sum(li, logit))));
    }
    // Every invocation holds the same g (and counts); invocation 0 writes.
    let run = FULL_DEPTH || g > params.threshold;
    if (li == 0u) {
      let w = r * params.words + params.route_word;
      if (FIRST_ROUTED) {
        for (var i = 0u; i < params.words; i++) { routes[r * params.words + i] = 0u; }
      }
      if (run) {
        routes[w] = routes[w] | (1u << params.route_bit);
        kept_idx[nk] = r;
        kept_g[nk] = g;
      } else {
        skip_idx[ns] = r;
        skip_g[ns] = g;
      }
    }
    if (run) {
      nk++;
    } else {
      ns++;
    }
  }
  if (li == 0u) {
    kept_step = Step(nk, 0u, 0u, 0u);
    skip_step = Step(ns, 0u, 0u, 0u);
  }
}
