// Input gradient of a linear layer: dx[N, K] (+)= dy[N, M] · W[M, K]. lib/mm_train.wgsl with rows = N,
// cols = K, depth = M, A = dy read along M, B = W read along its rows (B(k, m) = W[m · K + k]).
// Bindings: 0 params {N, K, M, flags}, 1 dy, 2 W, 3 dx (overwritten, or accumulated with flags bit 0: the
// projections that read one input — q, k and v, or gate and up — sum their gradients into one dx).
// Grid: (ceil(K / 128), ceil(N / 128)).

//! use lib/mm_train.wgsl

fn stage(li: u32, i0: u32, j0: u32, l0: u32) {
  stage_a_l(li, i0, l0);
  stage_b_j(li, j0, l0);
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  mm_tile(li, wid.y, wid.x);
}
