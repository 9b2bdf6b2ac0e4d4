// Weight gradient of a linear layer: dW[M, K] += dy[N, M]ᵀ · x[N, K]. lib/mm_train.wgsl with rows = M,
// cols = K, depth = N, A = dy and B = x, both read along their rows (A(m, n) = dy[n · M + m]).
// Bindings: 0 params {M, K, N, flags}, 1 dy, 2 x, 3 dW (accumulated when flags bit 0 is set, as parameter
// gradients are by convention: micro-batches add up; overwritten without it). Grid: (ceil(K / 128), ceil(M / 128)).

//! use lib/mm_train.wgsl

fn stage(li: u32, i0: u32, j0: u32, l0: u32) {
  stage_a_i(li, i0, l0);
  stage_b_j(li, j0, l0);
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  mm_tile(li, wid.y, wid.x);
}
