/** The bundled models' cards (README.md with Hugging Face front matter) and the α figure, from measured figures. */

import { lineChart } from "../src/ui/line_chart.ts";
import type { AlphaPoint, DmtdPoint, TaskRow, TrainFigures } from "./figures.ts";

export interface CardFacts {
  data: string[];
  base: TrainFigures;
  baseArgs: string[];
  stageArgs: string[];
  /** `experiment all`'s sample count and length flags. */
  experimentArgs: string[];
}

const LICENCE = "cdla-sharing-1.0";
const SHAPE = "Llama, 8 layers of 128 (4 heads of 32, MLP 352), 512-token vocabulary (`llama-2m` preset), " +
  "~1.7M parameters, f32";
const TOKENIZER = "stories260K's 512-piece sentencepiece BPE (llama2.c, MIT)";
const REBUILD = "npx -y deno@2.9.6 task models   # from the repository root, with ../shared beside it";
const REBUILD_SECTION = ["## Rebuild", "", "```sh", REBUILD, "```", ""];

const f = (x: number, d = 3) => Number.isFinite(x) ? x.toFixed(d) : "—";
const minutes = (s: number) => `${(s / 60).toFixed(0)} min`;
const tokens = (n: number) => n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(0)}K`;
const accuracy = (r: TaskRow) => r.accuracy ? `${r.accuracy.correct}/${r.accuracy.total}` : "—";

function frontMatter(tags: string[]): string {
  return [
    "---",
    `license: ${LICENCE}`,
    "library_name: flexidepth",
    "tags:",
    ...tags.map((t) => `  - ${t}`),
    "---",
  ]
    .join("\n");
}

function baseSection(o: CardFacts): string[] {
  return [
    "## Base model (trained here from scratch)",
    "",
    `- Shape: ${SHAPE}. Tokenizer: ${TOKENIZER}.`,
    `- Data (\`--data\`, mixed): ${o.data.map((d) => `\`${d}\``).join(", ")} — TinyStories and Shakespeare ` +
    "text, and the study's task generators with exact answers (copy and continue on TinyStories paragraphs; " +
    "repeat, sum and product of 5–10 integers in [10, 99]).",
    `- Training: ${o.base.steps} steps (\`${o.baseArgs.join(" ")}\`), ${tokens(o.base.tokens)} tokens, ` +
    `${minutes(o.base.seconds)}; train loss ${f(o.base.trainLoss)}, held-out loss ${f(o.base.valLoss)} nats.`,
    "",
  ];
}

function taskTable(columns: Array<[string, TaskRow[]]>): string[] {
  const head = `| task | ${columns.map(([n]) => `${n}: layers/token | ${n}: accuracy`).join(" | ")} |`;
  const rule = `|---|${columns.map(() => "---:|---:").join("|")}|`;
  const rows = columns[0][1].map((r, i) =>
    `| ${r.task} | ${columns.map(([, rs]) => `${f(rs[i].meanLayers, 2)} | ${accuracy(rs[i])}`).join(" | ")} |`
  );
  return [head, rule, ...rows, ""];
}

function alphaTable(points: AlphaPoint[], chosen: AlphaPoint, base: TrainFigures): string[] {
  return [
    "| α | layers per token (of 8) | held-out loss | train loss |",
    "|---:|---:|---:|---:|",
    `| base, full depth | 8.00 | ${f(base.valLoss)} | ${f(base.trainLoss)} |`,
    ...points.map((p) =>
      `| ${p.alpha}${p === chosen ? " (chosen)" : ""} | ${f(p.meanLayers, 2)} | ${f(p.valLoss)} | ${
        f(p.trainLoss)
      } |`
    ),
    "",
  ];
}

/** Whether the routed model shows the paper's pattern, said with its figures (models/README.md says why not). */
export function patternVerdict(rows: TaskRow[]): string {
  const layers = (task: string) => rows.find((r) => r.task === task)?.meanLayers ?? NaN;
  const cheap = ["copy", "repeat"], dear = ["continue", "sum", "product"];
  const fewer = cheap.every((c) => dear.every((d) => layers(c) < layers(d)));
  const solved = ["sum", "product"].every((t) =>
    (rows.find((r) => r.task === t)?.accuracy?.correct ?? 0) > 0
  );
  const figures = [...cheap, ...dear].map((t) => `${t} ${f(layers(t), 2)}`).join(", ");
  if (fewer && solved) return `The paper's pattern shows here (${figures}), with sums and products answered.`;
  return `The paper's pattern — copy and repeat cheaper than continue, sum and product, with sums and products ` +
    `answered — does not show here (${figures}${solved ? "" : "; no sum or product right"}): this base ` +
    "cannot copy yet. `models/README.md` says what was tried and why, and how a GPU would build one that can.";
}

export function flexidepthCard(
  o: CardFacts & { points: AlphaPoint[]; chosen: AlphaPoint; routed: TaskRow[]; full: TaskRow[] },
): string {
  return [
    frontMatter(["flexidepth", "adaptive-depth", "llama"]),
    "",
    "# flexidepth-tiny",
    "",
    "A small Llama trained here with FlexiDepth routers and adapters on its later half (layers 4–7): each token",
    "runs 4 to 8 layers. It is `flexidepth`'s default model, so `deno task start` shows what the layer colours mean.",
    "",
    ...baseSection(o),
    "## FlexiDepth stage",
    "",
    `Routers and adapters on layers 4–7, the base frozen, \`L = α·L_skip + L_lm\`, ${o.chosen.steps} steps ` +
    `(\`${o.stageArgs.join(" ")}\`) per α on the same data; chosen: **α = ${o.chosen.alpha}**, the largest ` +
    "whose held-out loss is within 0.05 nats of the base's at full depth. Layers per token are over the last 20 " +
    "training batches; the α figure is `alpha.svg`.",
    "",
    ...alphaTable(o.points, o.chosen, o.base),
    `## Layers per task (\`flexidepth experiment all ${o.experimentArgs.join(" ")}\`)`,
    "",
    "The paper's study: FlexiDepth-Llama-3-8B-Instruct used 21.95 (copy), 20.09 (repeat), 30.27 (continue), " +
    "22.45 (sum) and 23.90 (product) of 32 layers per generated token.",
    "",
    ...taskTable([["routed", o.routed], ["full depth", o.full]]),
    patternVerdict(o.routed),
    "",
    ...REBUILD_SECTION,
  ].join("\n");
}

function speedTable(speeds: DmtdPoint[]): string[] {
  const base = speeds.find((p) => p.tau === 0);
  return [
    "| model | held-out loss | decode tokens/s (lavapipe) |",
    "|---|---:|---:|",
    ...speeds.map((p) =>
      `| ${p.tau === 0 ? "base" : `DMTD, τ = ${p.tau}`} | ${p.tau === 0 ? "see above" : f(p.valLoss)} | ` +
      `${f(p.tokensPerS, 0)}${
        base && p.tau !== 0 ? ` (${(p.tokensPerS / base.tokensPerS).toFixed(2)}×)` : ""
      } |`
    ),
    "",
  ];
}

export function dmtdCard(
  o: CardFacts & { run: TrainFigures; cycle: number; tasks: TaskRow[]; speeds: DmtdPoint[] },
): string {
  return [
    frontMatter(["flexidepth", "dmtd", "multi-token-decoding", "llama"]),
    "",
    "# dmtd-tiny",
    "",
    `The same base fine-tuned for direct multi-token decoding (DMTD) with a cycle of τ = ${o.cycle}: the first ` +
    "token of a cycle runs all 8 layers (6 thinking + 2 decoding), the others only the last 2.",
    "",
    ...baseSection(o),
    "## DMTD stage",
    "",
    `Every layer but the embedding and the LM head trained, ${o.run.steps} steps (\`${
      o.stageArgs.join(" ")
    }\`), ` +
    `${tokens(o.run.tokens)} tokens, ${minutes(o.run.seconds)}; held-out loss ${f(o.run.valLoss)} at τ = ` +
    `${o.cycle} (base at full depth: ${f(o.base.valLoss)}).`,
    "",
    "Held-out loss and decode speed at each τ (τ = 1 runs every layer for every token; speed: the best of 3",
    "greedy runs of 256 tokens after `Once upon a time`, Mesa's lavapipe software GPU on a 2-core machine):",
    "",
    ...speedTable(o.speeds),
    `## Layers per task (\`flexidepth experiment all ${o.experimentArgs.join(" ")}\`, τ = ${o.cycle})`,
    "",
    ...taskTable([["DMTD", o.tasks]]),
    ...REBUILD_SECTION,
  ].join("\n");
}

/**
 * The paper's α trade-off as a standalone SVG: layers per token against held-out loss, the base at full depth
 * and each α of the sweep (larger α: fewer layers, higher loss), in the order of their losses.
 */
export function alphaFigure(points: AlphaPoint[], base: TrainFigures): string {
  const sweep = [...points].sort((a, b) => a.alpha - b.alpha).map((
    p,
  ): [number, number] => [p.valLoss, p.meanLayers]);
  const html = lineChart([
    {
      name: "base, then α ↑",
      color: "#1f4e9c",
      points: [[base.valLoss, 8] as [number, number], ...sweep].sort((a, b) => a[0] - b[0]),
    },
  ], { title: "FlexiDepth α sweep", xLabel: "held-out loss (nats)", yLabel: "layers per token" });
  const svg = html.slice(html.indexOf("<svg "), html.lastIndexOf("</svg>") + "</svg>".length);
  return svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ') + "\n";
}
