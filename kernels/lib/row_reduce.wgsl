// A workgroup's sum (row_sum) or maximum (row_max) of one value per thread, for the training kernels that
// reduce a row in one workgroup.
// Needs from the kernel: nothing; declares `override WG` (threads per workgroup, a power of two) and the
// workgroup array. Every thread of the workgroup must call it (it holds barriers) and gets the same sum, always
// added in the same order (results do not depend on timing).

override WG: u32 = 64u;

var<workgroup> reduce_buf: array<f32, WG>;

fn row_sum(li: u32, v: f32) -> f32 {
  reduce_buf[li] = v;
  workgroupBarrier();
  for (var off = WG / 2u; off > 0u; off >>= 1u) {
    if (li < off) {
      reduce_buf[li] += reduce_buf[li + off];
    }
    workgroupBarrier();
  }
  let total = reduce_buf[0];
  // The buffer is reused by the next call: nobody may write it before everyone has read the total.
  workgroupBarrier();
  return total;
}

// The workgroup's maximum of one value per thread (same rules as row_sum).
fn row_max(li: u32, v: f32) -> f32 {
  reduce_buf[li] = v;
  workgroupBarrier();
  for (var off = WG / 2u; off > 0u; off >>= 1u) {
    if (li < off) {
      reduce_buf[li] = max(reduce_buf[li], reduce_buf[li + off]);
    }
    workgroupBarrier();
  }
  let total = reduce_buf[0];
  workgroupBarrier();
  return total;
}
