/** The model builder's figures (a run's log, the α choice) and the cards and α figure drawn from them. */

import assert from "node:assert/strict";
import { alphaFigure, dmtdCard, flexidepthCard, patternVerdict } from "../models/cards.ts";
import { type AlphaPoint, chooseAlpha, type TaskRow, trainFigures } from "../models/figures.ts";

const log = (n: number) =>
  Array.from({ length: n }, (_, step) => ({
    step,
    lm_loss: 5 - step / n,
    mean_layers: 8 - step % 2,
    elapsed_s: step + 1,
    tokens_per_s: 100,
    ...(step % 10 === 9 ? { val_loss: 4 - step / 100 } : {}),
  }));

Deno.test("trainFigures: tokens, time, the last held-out loss and the last 20 steps' means", () => {
  const f = trainFigures(log(40), 4096);
  assert.equal(f.steps, 40);
  assert.equal(f.tokens, 40 * 4096);
  assert.equal(f.seconds, 40);
  assert.equal(f.valLoss, 4 - 39 / 100);
  assert.deepEqual(f.valCurve.map(([s]) => s), [10, 20, 30, 40]);
  assert.ok(Math.abs(f.trainLoss - (5 - (20 + 39) / 2 / 40)) < 1e-12);
  assert.equal(f.meanLayers, 7.5);
  assert.throws(() => trainFigures([], 1), /train it first/);
});

const point = (alpha: number, valLoss: number, meanLayers: number): AlphaPoint => ({
  alpha,
  dir: `fd-${alpha}`,
  valLoss,
  meanLayers,
  steps: 150,
  tokens: 1,
  seconds: 60,
  trainLoss: valLoss,
  valCurve: [],
});

Deno.test("chooseAlpha: the largest α within the tolerance of the base's loss, else the smallest", () => {
  const sweep = [point(1e-1, 2.6, 5), point(1e-3, 2.01, 7.9), point(1e-2, 2.04, 7.2), point(3e-2, 2.2, 6)];
  assert.equal(chooseAlpha(sweep, 2.0).alpha, 1e-2);
  assert.equal(chooseAlpha(sweep, 2.0, 0.25).alpha, 3e-2);
  assert.equal(chooseAlpha(sweep, 1.5).alpha, 1e-3);
  assert.throws(() => chooseAlpha([], 2), /no runs/);
});

Deno.test("cards: every α and task row, the choice, the rebuild command; the α figure is a standalone SVG", () => {
  const base = { ...point(0, 2.0, 8), steps: 700, tokens: 2_867_200, seconds: 7200 };
  const rows = (layers: number): TaskRow[] =>
    ["copy", "sum"].map((task, i) => ({
      task,
      meanLayers: layers + i,
      accuracy: i ? { correct: 3, total: 20 } : null,
      tokensPerS: 500,
    }));
  const sweep = [point(1e-3, 2.01, 7.9), point(1e-2, 2.04, 7.2)];
  const facts = {
    data: ["a.txt", "tasks:sum"],
    base,
    baseArgs: ["--steps", "700"],
    stageArgs: ["--steps", "150"],
    experimentArgs: ["-n", "12", "--max-tokens", "192"],
  };
  const card = flexidepthCard({
    ...facts,
    points: sweep,
    chosen: sweep[1],
    routed: rows(5.5),
    full: rows(8),
  });
  assert.match(card, /^---\nlicense: cdla-sharing-1\.0\n/);
  assert.match(card, /\*\*α = 0\.01\*\*/);
  assert.match(card, /\| 0\.01 \(chosen\) \| 7\.20 \| 2\.040 \|/);
  assert.match(card, /\| sum \| 6\.50 \| 3\/20 \| 9\.00 \| 3\/20 \|/);
  assert.match(card, /2\.87M tokens, 120 min/);
  assert.match(card, /deno@2\.9\.6 task models/);
  assert.match(card, /experiment all -n 12 --max-tokens 192/);
  const speeds = [{ tau: 2, valLoss: 2.1, tokensPerS: 300 }, { tau: 0, valLoss: NaN, tokensPerS: 200 }];
  const dcard = dmtdCard({ ...facts, run: base, cycle: 4, tasks: rows(4), speeds });
  assert.match(dcard, /\| DMTD, τ = 2 \| 2\.100 \| 300 \(1\.50×\) \|/);
  const svg = alphaFigure(sweep, base);
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" /);
  assert.match(svg, /<path d="M/);
});

Deno.test("cards: the verdict on the paper's pattern follows the task figures", () => {
  const tasks = ["copy", "summarize", "continue", "repeat", "sum", "product"];
  const rows = (layers: number[], correct: number): TaskRow[] =>
    tasks.map((task, i) => ({
      task,
      meanLayers: layers[i],
      accuracy: i >= 3 ? { correct, total: 12 } : null,
      tokensPerS: 1,
    }));
  assert.match(
    patternVerdict(rows([5, 7, 7.5, 4.5, 6, 6.5], 3)),
    /pattern shows here \(copy 5\.00, repeat 4\.50/,
  );
  // Cheap enough but no sum right; then copy as dear as continuing (flexidepth-tiny's figures).
  assert.match(
    patternVerdict(rows([5, 7, 7.5, 4.5, 6, 6.5], 0)),
    /does not show here .*; no sum or product right\)/,
  );
  assert.match(
    patternVerdict(rows([7.69, 7.72, 7.7, 4.52, 4.36, 4.41], 0)),
    /does not show here \(copy 7\.69, repeat 4\.52, continue 7\.70, sum 4\.36, product 4\.41; no sum/,
  );
  assert.match(
    patternVerdict(rows([7.8, 7, 7.5, 4.5, 6, 6.5], 5)),
    /does not show here \(copy 7\.80.*product 6\.50\)/,
  );
});
