/**
 * The training loop: each step runs its micro-batches (forward, loss, backward, gradients added), then the
 * optimizer, in command buffers submitted back to back, and reads the step's figures once. Validation every
 * `evalEvery` steps, the state every `saveEvery` steps and at the end, atomically; an interrupt finishes the
 * step in progress, saves, exports and stops. Nothing is allocated per step.
 */

import { learningRate } from "../ops/optim/schedule.ts";
import { IGNORE_TARGET } from "../ops/loss/reference.ts";
import type { Batch } from "./data/mod.ts";
import { exportModel } from "./export.ts";
import { progressLine, resumeLog, StepLog, type StepRecord } from "./log.ts";
import { renderTrainReport, REPORT_FILE } from "./report.ts";
import { runSettings, type TrainSetup } from "./setup.ts";
import { exportConfig } from "./shapes.ts";
import { saveState } from "./state.ts";
import type { StepReading } from "./step_stats.ts";
import { StepRunner } from "./step.ts";
import { writeFileAtomic } from "./atomic.ts";
import { join } from "node:path";

export interface TrainHooks {
  /** Each step's record, as it is logged. */
  onStep?: (r: StepRecord, steps: number) => void;
  /** Asked after each step: true stops the run there (saved and exported), as Ctrl-C does. */
  stopRequested?: () => boolean;
}

export interface TrainResult {
  records: StepRecord[];
  /** Steps done in all (a resumed run's included). */
  steps: number;
  interrupted: boolean;
}

/** Mean layers per token: every layer, less the routed layers' skipped share. */
function meanLayers(s: TrainSetup, r: StepReading): number {
  const layers = s.shape.layers;
  if (!r.routedFraction) return layers;
  return layers - s.shape.routed.length + r.routedFraction.reduce((a, b) => a + b, 0);
}

/** Mean LM loss over up to `valBatches` held-out batches (null: no held-out data). */
export async function validationLoss(s: TrainSetup): Promise<number | null> {
  const { device } = s.gpu, N = s.ctx.rows;
  const inputs = new Uint32Array(N), targets = new Uint32Array(N);
  const staging = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  let sum = 0, counted = 0, batches = 0;
  try {
    for (const b of s.data.validation(s.opts.batch)) {
      if (batches++ >= s.opts.valBatches) break;
      padInto(b, inputs, targets);
      s.model.setBatch(device.queue, inputs, targets);
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      s.model.encodeForward(pass);
      pass.end();
      enc.copyBufferToBuffer(s.model.outputs.lmLoss, 0, staging, 0, 16);
      device.queue.submit([enc.finish()]);
      await staging.mapAsync(GPUMapMode.READ);
      const f = new Float32Array(staging.getMappedRange().slice(0));
      staging.unmap();
      sum += f[1];
      counted += f[2];
    }
  } finally {
    staging.destroy();
  }
  return counted > 0 ? sum / counted : null;
}

/** A batch of up to N rows' worth into full-size arrays; the rows it lacks count for nothing. */
function padInto(b: Batch, inputs: Uint32Array, targets: Uint32Array): void {
  inputs.fill(0);
  targets.fill(IGNORE_TARGET);
  inputs.set(b.inputs);
  targets.set(b.targets);
}

/** Writes the run's state, its exported checkpoint and report. */
export async function saveRun(s: TrainSetup, step: number, records: StepRecord[]): Promise<void> {
  const settings = runSettings(s.opts);
  await saveState(s.opts.out, s.store, { step, data: s.data.position, settings });
  await exportModel({
    out: join(s.opts.out, "model"),
    config: await exportConfig(s.shape, s.opts.model),
    store: s.store,
    base: s.base,
    tokenizerDir: s.tokenizerDir,
    dtype: s.base?.dtype ?? "F32",
  });
  const title = `flexidepth train --stage ${s.opts.stage}`;
  await writeFileAtomic(join(s.opts.out, REPORT_FILE), renderTrainReport(title, settings, records));
}

export async function train(s: TrainSetup, hooks: TrainHooks = {}): Promise<TrainResult> {
  const o = s.opts, first = s.resumed?.step ?? 0;
  const log = await StepLog.open(o.out, await resumeLog(o.out, first));
  const runner = new StepRunner(s.gpu.device, s.model, s.optimizer, o.accumulate);
  const schedule = { peak: o.lr, warmup: o.warmup, total: o.steps, min: o.minLr };
  const tokensPerStep = o.batch * o.seq * o.accumulate;
  const started = performance.now() - (log.records.at(-1)?.elapsed_s ?? 0) * 1000;
  let step = first, interrupted = false;
  try {
    while (step < o.steps) {
      const t0 = performance.now();
      const r = await runner.step(step + 1, learningRate(step + 1, schedule), () => s.data.batch(o.batch));
      const seconds = (performance.now() - t0) / 1000;
      const due = (step + 1) % o.evalEvery === 0 || step + 1 === o.steps;
      const val = due ? await validationLoss(s) : null;
      const rec: StepRecord = {
        step,
        loss: r.lmLoss + o.alpha * (r.skipLoss ?? 0),
        lm_loss: r.lmLoss,
        skip_loss: r.skipLoss,
        mean_layers: meanLayers(s, r),
        routed_fraction: r.routedFraction,
        lr: learningRate(step + 1, schedule),
        grad_norm: r.gradNorm,
        tokens_per_s: tokensPerStep / seconds,
        ...(val === null ? {} : { val_loss: val }),
        elapsed_s: (performance.now() - started) / 1000,
      };
      await log.append(rec);
      hooks.onStep?.(rec, o.steps);
      step++;
      interrupted = step < o.steps && !!hooks.stopRequested?.();
      if (interrupted || step === o.steps || step % o.saveEvery === 0) await saveRun(s, step, log.records);
      if (interrupted) break;
    }
  } finally {
    log.close();
    runner.destroy();
  }
  return { records: log.records, steps: step, interrupted };
}

export { progressLine };
