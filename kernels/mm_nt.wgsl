// Training forward of a linear layer: y[N, M] (+)= x[N, K] · W[M, K]ᵀ (W row-major [out, in], as Hugging Face
// stores it). lib/mm_train.wgsl with rows = N, cols = M, depth = K, A = x and B = W, both read along K.
// Bindings: 0 params {N, M, K, flags}, 1 x, 2 W, 3 y (overwritten, or accumulated with flags bit 0: a
// projection added into the residual stream). Grid: (ceil(M / 128), ceil(N / 128)).

//! use lib/mm_train.wgsl

fn stage(li: u32, i0: u32, j0: u32, l0: u32) {
  stage_a_l(li, i0, l0);
  stage_b_l(li, j0, l0);
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  mm_tile(li, wid.y, wid.x);
}
