/** `flexidepth train`: FlexiDepth routers and adapters, DMTD cycles, or a small model from scratch, on the GPU. */

import { UsageError } from "../errors.ts";
import { choiceFlag, numberFlag, parseCommandFlags } from "./args.ts";
import { type Stage, STAGES } from "../train/model/params.ts";
import { SHAPE_PRESETS } from "../train/model/shape.ts";
import { setupTraining, type TrainOptions } from "../train/setup.ts";
import { progressLine, train } from "../train/trainer.ts";
import { LOG_FILE } from "../train/log.ts";
import { REPORT_FILE } from "../train/report.ts";

export const TRAIN_HELP =
  `flexidepth train — train FlexiDepth routers, a DMTD model, or a small model from scratch

Usage:
  flexidepth train --stage flexidepth --model BASE --data SOURCE… -o OUT/ [options]
  flexidepth train --stage dmtd --model BASE --data SOURCE… -o OUT/ [--cycle 4]
  flexidepth train --stage pretrain --shape PRESET|config.json --tokenizer MODEL --data SOURCE… -o OUT/
  flexidepth train --stage pretrain --model BASE --data SOURCE… -o OUT/     (continue pretraining BASE)

Stages:
  flexidepth  the base frozen; a router and an adapter on each routed layer, trained with
              L = L_lm + α·L_skip, L_skip = mean over tokens of (Σ routed gates)², hard routing (g > 0.5)
  dmtd        every layer but the embedding and LM head trained with DMTD's forward: the decoding layers
              read e + t at cycle heads (p mod τ = 0) and e alone elsewhere
  pretrain    a Llama or Qwen3 of the given shape from random initialisation, or --model's weights to go
              on pretraining them (on new data, a curriculum), every weight trained
              (presets: ${Object.keys(SHAPE_PRESETS).join(", ")})

Data (--data, repeatable): FILE.txt (documents split at blank lines, or --doc-sep), FILE.jsonl with "text"
or chat "messages", tasks:copy,repeat,sum,product[:N][@FILE] (the experiment's tasks with exact answers, N
each, text tasks on FILE's paragraphs); SOURCE*W packs a source W times an epoch. Tokenized once (a cache in
OUT/cache), packed into --seq windows with BOS/EOS.

Writes to OUT/ (run the same command again to resume; Ctrl-C finishes the step, saves and exits 130):
  model/                   the trained checkpoint, loadable by run, chat, experiment, eval
  ${LOG_FILE}              one line per step: loss, L_lm, L_skip, layers, lr, gradient norm, tokens/s
  ${REPORT_FILE}              loss curves, validation loss, mean layers per token, tokens per routed layer
  train_state.safetensors  weights, AdamW moments, step and data position (written atomically)

Options:
  --stage S          flexidepth, dmtd or pretrain (required)
  --model DIR        the base model (flexidepth, dmtd; pretrain: the model to continue)
  --shape P          pretrain: a preset or a config.json (default stories260K)
  --tokenizer DIR    pretrain: the model folder whose tokenizer to use
  --data SOURCE      training data (repeatable; see above)
  -o, --out DIR      output folder (required)
  --steps N          optimizer steps (default 200)
  --batch B          sequences per micro-batch (default 8)
  --seq T            tokens per sequence (default 256)
  --accumulate K     micro-batches per step (default 1)
  --lr R             peak learning rate (default 1e-3; 1e-4 as the papers for a large base)
  --min-lr R         the cosine's floor (default lr / 10)
  --warmup N         warm-up steps (default 5% of the steps)
  --weight-decay W   AdamW's decoupled decay (default 0.1; flexidepth 0)
  --clip C           global gradient-norm clip (default 1, 0 for none)
  --alpha A          flexidepth: the weight of L_skip (default 1e-3)
  --layers LIST      flexidepth: routed layers, e.g. 2,3,4 or 2-4 (default the base's, else the later half)
  --cycle N          dmtd: τ, tokens per cycle (default the base's, else 4)
  --decoding-layers N  dmtd: layers every token runs (default the base's, else about 8 of 36)
  --seed S           initialisation, data order and held-out split (default 1)
  --eval-every N     validation loss every N steps (default 50)
  --save-every N     state and checkpoint every N steps (default 50)
  --val-batches N    held-out batches per validation (default 8)
  --held-out F       held-out documents: a fraction (< 1) or a count (default 0.05)
  --doc-sep S        plain-text documents end at S rather than at blank lines
  -h, --help         this help

Examples:
  flexidepth train --stage flexidepth --model ../shared/models/stories260K \\
    --data ../shared/data/text/tinystories_valid_excerpt.txt --alpha 1e-2 --steps 300 -o runs/fd
  flexidepth train --stage pretrain --shape llama-10m --tokenizer ../shared/models/stories260K \\
    --data ../shared/data/text/tinystories_valid_excerpt.txt --steps 2000 -o runs/pre
  flexidepth train --stage dmtd --model runs/pre/model --data tasks:copy,repeat --cycle 2 -o runs/dmtd
  flexidepth run --model runs/fd/model < prompt.txt
`;

const OPTIONS = {
  stage: { type: "string" },
  model: { type: "string" },
  shape: { type: "string" },
  tokenizer: { type: "string" },
  data: { type: "string", multiple: true },
  out: { type: "string", short: "o" },
  steps: { type: "string" },
  batch: { type: "string" },
  seq: { type: "string" },
  accumulate: { type: "string" },
  lr: { type: "string" },
  "min-lr": { type: "string" },
  warmup: { type: "string" },
  "weight-decay": { type: "string" },
  clip: { type: "string" },
  alpha: { type: "string" },
  layers: { type: "string" },
  cycle: { type: "string" },
  "decoding-layers": { type: "string" },
  seed: { type: "string" },
  "eval-every": { type: "string" },
  "save-every": { type: "string" },
  "val-batches": { type: "string" },
  "held-out": { type: "string" },
  "doc-sep": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** "2,3,5-7" → [2, 3, 5, 6, 7]. */
export function parseLayerList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.split(",")) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m || (m[2] !== undefined && Number(m[2]) < Number(m[1]))) {
      throw new UsageError(
        `--layers: "${part}" is not a layer or a range`,
        "write e.g. --layers 2,3,4 or 2-4",
      );
    }
    for (let l = Number(m[1]); l <= Number(m[2] ?? m[1]); l++) out.push(l);
  }
  return [...new Set(out)];
}

type Values = ReturnType<typeof parseCommandFlags<typeof OPTIONS>> extends infer P
  ? P extends { values: infer V } ? V : never
  : never;

/** The run's options from the flags, each checked. */
export function trainOptions(v: Values): TrainOptions {
  if (!v.stage) throw new UsageError("train: --stage is required", `pass --stage ${STAGES.join("|")}`);
  const stage = choiceFlag<Stage>(v.stage, "--stage", STAGES, "flexidepth");
  if (!v.out) throw new UsageError("train: -o OUT is required", "give a folder for the run, e.g. -o runs/fd");
  if (!v.data?.length) throw new UsageError("train: no --data", "pass --data FILE.txt (or .jsonl, tasks:…)");
  const int = (value: string | undefined, name: string, fallback: number, min = 1) =>
    numberFlag(value, name, fallback, { min, integer: true });
  const steps = int(v.steps, "--steps", 200);
  const lr = numberFlag(v.lr, "--lr", 1e-3, { min: 0 });
  const every = (value: string | undefined, name: string) => int(value, name, 50);
  return {
    stage,
    model: v.model ?? null,
    shape: v.shape ?? null,
    tokenizer: v.tokenizer ?? null,
    data: v.data,
    out: v.out,
    steps,
    batch: int(v.batch, "--batch", 8),
    seq: int(v.seq, "--seq", 256, 2),
    accumulate: int(v.accumulate, "--accumulate", 1),
    lr,
    minLr: numberFlag(v["min-lr"], "--min-lr", lr / 10, { min: 0 }),
    warmup: int(v.warmup, "--warmup", Math.floor(steps / 20), 0),
    weightDecay: numberFlag(v["weight-decay"], "--weight-decay", stage === "flexidepth" ? 0 : 0.1, {
      min: 0,
    }),
    clip: numberFlag(v.clip, "--clip", 1, { min: 0 }),
    alpha: numberFlag(v.alpha, "--alpha", 1e-3, { min: 0 }),
    layers: v.layers === undefined ? null : parseLayerList(v.layers),
    cycle: v.cycle === undefined ? null : int(v.cycle, "--cycle", 4),
    decodingLayers: v["decoding-layers"] === undefined
      ? null
      : int(v["decoding-layers"], "--decoding-layers", 1),
    seed: int(v.seed, "--seed", 1, 0),
    evalEvery: every(v["eval-every"], "--eval-every"),
    saveEvery: every(v["save-every"], "--save-every"),
    valBatches: int(v["val-batches"], "--val-batches", 8),
    heldOut: numberFlag(v["held-out"], "--held-out", 0.05, { min: 0 }),
    docSep: v["doc-sep"],
  };
}

export async function trainCommand(argv: string[]): Promise<number> {
  const flags = parseCommandFlags("train", argv, OPTIONS, TRAIN_HELP);
  if (!flags) return 0;
  if (flags.positionals.length) {
    throw new UsageError(`train: unexpected argument "${flags.positionals[0]}"`, "pass data with --data");
  }
  const opts = trainOptions(flags.values);
  const setup = await setupTraining(opts);
  if (setup.resumed) console.error(`resuming ${opts.out} at step ${setup.resumed.step} of ${opts.steps}`);
  let stop = false;
  const onInterrupt = () => stop = true;
  Deno.addSignalListener("SIGINT", onInterrupt);
  const tty = Deno.stderr.isTerminal() && !Deno.env.get("FLEXIDEPTH_NO_PROGRESS");
  const enc = new TextEncoder();
  try {
    const result = await train(setup, {
      stopRequested: () => stop,
      onStep: (r, steps) => {
        const line = progressLine(r, steps);
        if (tty) Deno.stderr.writeSync(enc.encode(`\r\x1b[K${line}`));
        else if (r.val_loss !== undefined || r.step + 1 === steps) console.error(line);
      },
    });
    if (tty) console.error("");
    console.log(`wrote ${opts.out}/model, ${opts.out}/${LOG_FILE}, ${opts.out}/${REPORT_FILE}`);
    if (result.interrupted) {
      console.error(`interrupted at step ${result.steps} of ${opts.steps}; run the same command to resume`);
      return 130;
    }
    return 0;
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
  }
}
