/**
 * `flexidepth train` end to end on stories260K (small steps): the run writes its checkpoint, log and report;
 * a run stopped (as by Ctrl-C) or crashed after its last save and started again with the same settings ends on
 * the same loss curve as an uninterrupted run, bit for bit; other settings on the same folder are refused; the
 * exported FlexiDepth and DMTD checkpoints load and run.
 */

import { deepStrictEqual as assertEquals, ok, rejects } from "node:assert/strict";
import { join } from "node:path";
import { setupTraining, type TrainOptions } from "../src/train/setup.ts";
import { train } from "../src/train/trainer.ts";
import { LOG_FILE, type StepRecord } from "../src/train/log.ts";
import { TrainError } from "../src/train/errors.ts";
import { Model } from "../src/generation/model.ts";
import { testGpu } from "./harness.ts";

const SHARED = join(import.meta.dirname!, "../../shared");
const STORIES = join(SHARED, "models/stories260K");
const TEXT = join(SHARED, "data/text/tinystories_valid_excerpt.txt");
const tmp = await Deno.makeTempDir({ prefix: "flexidepth-train-run-" });

function options(out: string, over: Partial<TrainOptions> = {}): TrainOptions {
  return {
    stage: "flexidepth",
    model: STORIES,
    shape: null,
    tokenizer: null,
    data: [TEXT],
    out,
    steps: 6,
    batch: 2,
    seq: 32,
    accumulate: 2,
    lr: 3e-3,
    minLr: 3e-4,
    warmup: 1,
    weightDecay: 0,
    clip: 1,
    alpha: 1e-2,
    layers: null,
    cycle: null,
    decodingLayers: null,
    seed: 3,
    evalEvery: 3,
    saveEvery: 3,
    valBatches: 2,
    heldOut: 0.02,
    ...over,
  };
}

async function runTo(o: TrainOptions, stopAfter?: number) {
  const s = await setupTraining(o, await testGpu("fast"));
  try {
    return await train(s, { stopRequested: () => stopAfter !== undefined && s.resumed === null });
  } finally {
    s.ctx.destroy();
  }
}

const curve = async (dir: string) =>
  (await Deno.readTextFile(join(dir, LOG_FILE))).trim().split("\n").map((l) => {
    const r = JSON.parse(l) as StepRecord;
    return [r.step, r.loss, r.lm_loss, r.skip_loss, r.mean_layers, r.grad_norm, r.val_loss ?? null];
  });

Deno.test("train: a stopped run resumes onto the uninterrupted run's loss curve, bit for bit", async () => {
  const whole = join(tmp, "whole"), split = join(tmp, "split");
  const a = await runTo(options(whole));
  ok(!a.interrupted && a.steps === 6);
  const stopped = await runTo(options(split), 1);
  ok(stopped.interrupted && stopped.steps === 1, "Ctrl-C finishes the step and stops");
  const resumed = await runTo(options(split));
  ok(!resumed.interrupted && resumed.steps === 6);
  assertEquals(await curve(split), await curve(whole));
  const first = (await curve(whole))[0][2] as number, last = (await curve(whole))[5][2] as number;
  ok(last < first, `the loss falls (${first} → ${last})`);
  for (const f of ["model/config.json", "model/model.safetensors", "model/tokenizer.json", "report.html"]) {
    await Deno.stat(join(whole, f));
  }
});

Deno.test("train: a run that dies after its last save resumes there and ends on the same curve", async () => {
  const whole = join(tmp, "whole"), crashed = join(tmp, "crashed");
  const s = await setupTraining(options(crashed), await testGpu("fast"));
  let steps = 0;
  await rejects(train(s, {
    onStep: () => {
      if (++steps === 5) throw new Error("killed");
    },
  }));
  s.ctx.destroy();
  ok((await curve(crashed)).length === 5, "lines past the saved step are in the log when it dies");
  await runTo(options(crashed));
  assertEquals(await curve(crashed), await curve(whole));
});

Deno.test("train: other settings on a run's folder are refused with the fix", async () => {
  await rejects(setupTraining(options(join(tmp, "whole"), { lr: 1e-2 })), (e: Error) => {
    ok(e instanceof TrainError && /other settings \(lr\)/.test(e.message) && /another -o/.test(e.message));
    return true;
  });
});

Deno.test("train: the trained FlexiDepth checkpoint runs, routed on the layers it trained", async () => {
  const model = await Model.load(join(tmp, "whole", "model"), {
    gpu: await testGpu("fast"),
    progress: false,
  });
  assertEquals(model.checkpoint.config.routingLayers, [2, 3, 4]);
  const { tokens, summary } = await model
    .generate({ ids: [1, 403, 407, 261, 438] }, { maxTokens: 8, ignoreEos: true }).collect();
  ok(summary.generatedTokens === 8 && tokens.length === 8);
  ok(tokens.every((t) => t.layers >= 2 && t.layers <= 5), "layers per token within the routed range");
});

Deno.test("train: dmtd and pretrain stages run, and their checkpoints load (DMTD decodes in cycles)", async () => {
  const dmtdDir = join(tmp, "dmtd"), preDir = join(tmp, "pre");
  await runTo(options(dmtdDir, { stage: "dmtd", steps: 2, cycle: 2, weightDecay: 0.1 }));
  const dmtd = await Model.load(join(dmtdDir, "model"), { gpu: await testGpu("fast"), progress: false });
  assertEquals(dmtd.checkpoint.config.dmtd, {
    encodingLayers: 0,
    thinkingLayers: 4,
    decodingLayers: 1,
    cycle: 2,
  });
  const { tokens } = await dmtd.generate({ ids: [1, 403, 407] }, { maxTokens: 6, ignoreEos: true }).collect();
  // The first token comes from the prompt's full-depth pass; then heads (5 layers) and one decoding layer alternate.
  assertEquals(tokens.map((t) => t.layers), [5, 5, 1, 5, 1, 5]);

  await runTo(
    options(preDir, { stage: "pretrain", model: null, shape: "qwen3-tiny", tokenizer: STORIES, steps: 2 }),
  );
  const pre = await Model.load(join(preDir, "model"), { gpu: await testGpu("fast"), progress: false });
  assertEquals(pre.checkpoint.config.architecture, "qwen3");
  assertEquals(pre.checkpoint.config.vocabSize, 512);
  const out = await pre.generate({ ids: [1, 403] }, { maxTokens: 4, ignoreEos: true }).collect();
  ok(out.tokens.length === 4);
});

Deno.test("train: pretrain --model continues the model's weights; a routed model or a shape beside it is refused", async () => {
  const dir = join(tmp, "continued"), fresh = join(tmp, "pre");
  await runTo(options(dir, { stage: "pretrain", steps: 2, lr: 1e-5, weightDecay: 0.1 }));
  const first = (await curve(dir))[0][2] as number, scratch = (await curve(fresh))[0][2] as number;
  ok(first < 3 && scratch > 5, `the first loss is the base's (${first}), not a new model's (${scratch})`);
  const ck = await Model.load(join(dir, "model"), { gpu: await testGpu("fast"), progress: false });
  assertEquals(ck.checkpoint.config.architecture, "llama");
  const refused = [
    [{ model: join(SHARED, "models/stories260K-flexidepth") }, /FlexiDepth or DMTD model.*the base it was/],
    [{ shape: "llama-2m" }, /sets the shape and tokenizer.*--model DIR alone/],
  ] as const;
  for (const [over, pattern] of refused) {
    await rejects(
      setupTraining(options(join(tmp, "refused"), { stage: "pretrain", ...over })),
      (e: Error) => {
        ok(e instanceof TrainError && pattern.test(e.message), e.message);
        return true;
      },
    );
  }
});
