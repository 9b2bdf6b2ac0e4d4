/**
 * `deno task models`: rebuilds the bundled models from ../shared/data/text and the study's task generators.
 *
 *   1. pretrain a Llama of the llama-2m shape with stories260K's tokenizer (TinyStories, Shakespeare, tasks);
 *   2. the FlexiDepth stage at each α of the sweep on it, each run's held-out loss and layers kept;
 *   3. the DMTD stage on the same base;
 *   4. `experiment all` on the chosen FlexiDepth model (routed and full depth) and the DMTD model; the DMTD
 *      model's held-out loss and decode tokens/s at τ = 1 … 4 against its base;
 *   5. models/flexidepth-tiny and models/dmtd-tiny: the checkpoints, their model cards and the α figure.
 *
 * Every stage resumes (the trainer's and experiment's own resume): run the same command again after an
 * interrupt. Work goes to --work (default runs/models); only step 5 writes into models/.
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { alphaFigure, dmtdCard, flexidepthCard } from "./cards.ts";
import { type AlphaPoint, chooseAlpha, type DmtdPoint, readTaskRows, readTrainLog } from "./figures.ts";
import { cliJson, formatFiles, runCli } from "./cli.ts";
import { dmtdValidationLoss } from "./dmtd_loss.ts";
import { numberFlag } from "../src/cli/args.ts";

const flags = parseArgs({
  options: {
    work: { type: "string", default: "runs/models" },
    shared: { type: "string", default: "../shared" },
    "pretrain-steps": { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (flags.values.help) {
  console.log(
    "deno task models [--work runs/models] [--shared ../shared] [--pretrain-steps 700]   (see models/README.md)",
  );
  Deno.exit(0);
}
const PRETRAIN_STEPS = (() => {
  try {
    return numberFlag(flags.values["pretrain-steps"], "--pretrain-steps", 700, { min: 1, integer: true });
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    Deno.exit(2);
  }
})();
const WORK = flags.values.work!, SHARED = flags.values.shared!;
const TEXT = `${SHARED}/data/text`;

/** The training mix every stage reads (the same held-out split and validation batches throughout). */
export const DATA = [
  `${TEXT}/tinystories_valid_excerpt.txt`,
  `${TEXT}/tinyshakespeare.txt*0.5`,
  `tasks:copy,continue:1500@${TEXT}/tinystories_valid_excerpt.txt`,
  "tasks:repeat:1500",
  "tasks:sum,product:3000",
];
const WINDOW = ["--seq", "512", "--eval-every", "50", "--save-every", "25"];
// 700 steps fit a 2-core software GPU in ~3 hours; a GPU can give the base far more (--pretrain-steps).
const PRETRAIN = ["--steps", String(PRETRAIN_STEPS), "--batch", "8", "--lr", "2e-3", "--warmup", "30"];
const FLEXIDEPTH = ["--steps", "100", "--batch", "8"];
const DMTD = ["--steps", "80", "--batch", "8"];
const EXPERIMENT = ["-n", "12", "--max-tokens", "192"];
export const ALPHAS = [3e-3, 1e-2, 3e-2];
const CYCLE = 4;
const TAUS = [1, 2, 3, 4];
const SPEED_PROMPT = "Once upon a time";

function dataFlags(): string[] {
  return DATA.flatMap((d) => ["--data", d]);
}

async function pretrain(): Promise<string> {
  const out = join(WORK, "base");
  await runCli([
    "train",
    "--stage",
    "pretrain",
    "--shape",
    "llama-2m",
    "--tokenizer",
    `${SHARED}/models/stories260K`,
    ...dataFlags(),
    ...PRETRAIN,
    ...WINDOW,
    "-o",
    out,
  ]);
  return out;
}

async function sweep(base: string): Promise<AlphaPoint[]> {
  const points: AlphaPoint[] = [];
  for (const alpha of ALPHAS) {
    const out = join(WORK, `flexidepth-alpha-${alpha}`);
    const args = ["--stage", "flexidepth", "--model", join(base, "model"), "--alpha", String(alpha)];
    await runCli(["train", ...args, ...dataFlags(), ...FLEXIDEPTH, ...WINDOW, "-o", out]);
    points.push({ alpha, dir: out, ...await readTrainLog(out) });
  }
  return points;
}

async function dmtd(base: string): Promise<string> {
  const out = join(WORK, "dmtd");
  const args = ["--stage", "dmtd", "--model", join(base, "model"), "--cycle", String(CYCLE)];
  await runCli(["train", ...args, ...dataFlags(), ...DMTD, ...WINDOW, "-o", out]);
  return out;
}

async function experiment(model: string, name: string, extra: string[] = []): Promise<string> {
  const out = join(WORK, `experiment-${name}`);
  await runCli([
    "experiment",
    "all",
    "--model",
    model,
    ...EXPERIMENT,
    ...extra,
    "-o",
    out,
  ]);
  return out;
}

/**
 * Decode tokens/s of a fixed prompt (the run's own summary), greedy, 256 tokens: the best of 3 runs (one run of
 * a model this small swung by ±30% on the 2-core machine).
 */
async function decodeSpeed(model: string, extra: string[]): Promise<number> {
  const args = ["run", SPEED_PROMPT, "--model", model, "--format", "jsonl", "--max-tokens", "256"];
  let best = 0;
  for (let i = 0; i < 3; i++) {
    const summary = (await cliJson([...args, ...extra])).find((l) => l.type === "summary");
    best = Math.max(best, Number(summary?.decode_tokens_per_s));
  }
  return best;
}

async function dmtdPoints(dmtdModel: string, baseModel: string): Promise<DmtdPoint[]> {
  const rows: DmtdPoint[] = [];
  for (const tau of TAUS) {
    const valLoss = await dmtdValidationLoss(dmtdModel, DATA, tau, join(WORK, `dmtd-val-${tau}`));
    rows.push({ tau, valLoss, tokensPerS: await decodeSpeed(dmtdModel, ["--cycle", String(tau)]) });
  }
  rows.push({ tau: 0, valLoss: NaN, tokensPerS: await decodeSpeed(baseModel, []) });
  return rows;
}

async function install(from: string, to: string, card: string, extra: Record<string, string> = {}) {
  await Deno.remove(to, { recursive: true }).catch(() => {});
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isFile) await Deno.copyFile(join(from, e.name), join(to, e.name));
  }
  await Deno.writeTextFile(join(to, "README.md"), card);
  for (const [name, text] of Object.entries(extra)) await Deno.writeTextFile(join(to, name), text);
  await formatFiles([to]); // the card, figure, config and tokenizer files, as `deno fmt --check` wants them
}

const base = await pretrain();
const baseLog = await readTrainLog(base);
const points = await sweep(base);
const chosen = chooseAlpha(points, baseLog.valLoss);
const dmtdRun = await dmtd(base);
const fdModel = join(chosen.dir, "model"), dmtdModel = join(dmtdRun, "model");
const routed = await readTaskRows(await experiment(fdModel, "flexidepth"));
const full = await readTaskRows(await experiment(fdModel, "full-depth", ["--full-depth"]));
const dmtdTasks = await readTaskRows(await experiment(dmtdModel, "dmtd"));
const speeds = await dmtdPoints(dmtdModel, join(base, "model"));
const facts = { data: DATA, base: baseLog, baseArgs: [...PRETRAIN, ...WINDOW], experimentArgs: EXPERIMENT };
const fdFacts = { ...facts, stageArgs: [...FLEXIDEPTH, ...WINDOW], points, chosen, routed, full };
await install(fdModel, "models/flexidepth-tiny", flexidepthCard(fdFacts), {
  "alpha.svg": alphaFigure(points, baseLog),
});
await install(
  dmtdModel,
  "models/dmtd-tiny",
  dmtdCard({
    ...facts,
    stageArgs: [...DMTD, ...WINDOW],
    run: await readTrainLog(dmtdRun),
    cycle: CYCLE,
    tasks: dmtdTasks,
    speeds,
  }),
);
console.log(`chose α = ${chosen.alpha}; wrote models/flexidepth-tiny and models/dmtd-tiny`);
