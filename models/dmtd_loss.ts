/**
 * A DMTD model's held-out loss at a cycle τ: the training forward of the dmtd stage (d_in = e + m·t, m = 1 at
 * cycle starts) over the validation batches a run with the builder's data and window would use.
 */

import { trainOptions } from "../src/cli/train.ts";
import { setupTraining } from "../src/train/setup.ts";
import { validationLoss } from "../src/train/trainer.ts";

export async function dmtdValidationLoss(
  model: string,
  data: string[],
  tau: number,
  out: string,
): Promise<number> {
  const o = trainOptions({ stage: "dmtd", model, data, out, cycle: String(tau), batch: "8", seq: "512" });
  const s = await setupTraining(o);
  try {
    const loss = await validationLoss(s);
    if (loss === null) throw new Error("no held-out data to measure");
    return loss;
  } finally {
    s.gpu.device.destroy();
  }
}
