/** `flexidepth train` as a user runs it: Ctrl-C saves and exits 130; bad flags are one line with the fix. */

import { deepStrictEqual as assertEquals, ok, rejects } from "node:assert/strict";
import { join } from "node:path";
import { assertOneLineError, runCli, spawnCli } from "./cli_harness.ts";
import { readRunState } from "../src/train/state.ts";

const SHARED = join(import.meta.dirname!, "../../shared");
const STORIES = join(SHARED, "models/stories260K");
const TEXT = join(SHARED, "data/text/tinystories_valid_excerpt.txt");

async function logLines(path: string): Promise<number> {
  try {
    return (await Deno.readTextFile(path)).trim().split("\n").filter((l) => l !== "").length;
  } catch {
    return 0;
  }
}

Deno.test("cli: Ctrl-C during train finishes the step, saves the state and the model, exits 130", async () => {
  const out = await Deno.makeTempDir({ prefix: "flexidepth-train-cli-" });
  try {
    const args = ["train", "--stage", "flexidepth", "--model", STORIES, "--data", TEXT, "--steps", "100000"];
    const child = spawnCli([...args, "--batch", "2", "--seq", "32", "--save-every", "100000", "-o", out]);
    const stderr = new Response(child.stderr).text(), stdout = new Response(child.stdout).text();
    while (await logLines(join(out, "train.jsonl")) < 2) await new Promise((r) => setTimeout(r, 100));
    child.kill("SIGINT");
    const { code } = await child.status;
    assertEquals(code, 130, await stderr);
    const m = /interrupted at step (\d+) of 100000; run the same command to resume/.exec(await stderr);
    ok(m, await stderr);
    const steps = Number(m[1]);
    ok(steps >= 2, `${steps} steps`);
    assertEquals(await logLines(join(out, "train.jsonl")), steps);
    assertEquals((await readRunState(out))?.step, steps);
    ok((await Deno.stat(join(out, "model", "model.safetensors"))).isFile);
    ok((await stdout).includes(`wrote ${out}/model`));
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("cli: train's bad flags are one line with the fix, and leave no output folder", async () => {
  const x = join(await Deno.makeTempDir({ prefix: "flexidepth-train-cli-" }), "out");
  const cases: Array<[string[], number, RegExp]> = [
    [["train", "--data", TEXT, "-o", x], 2, /--stage is required/],
    [["train", "--stage", "flexidepth", "--model", STORIES, "-o", x], 2, /no --data/],
    [["train", "--stage", "flexidepth", "--model", STORIES, "--data", TEXT], 2, /-o OUT is required/],
    [
      ["train", "--stage", "flexidepth", "--model", STORIES, "--data", TEXT, "--layers", "4-2", "-o", x],
      2,
      /--layers: "4-2"/,
    ],
    [
      ["train", "--stage", "pretrain", "--data", TEXT, "-o", x],
      1,
      /pretrain needs a tokenizer.*--tokenizer/,
    ],
    [["train", "--stage", "dmtd", "--data", TEXT, "-o", x], 1, /trains a base model.*--model/],
    [
      ["train", "--stage", "flexidepth", "--model", STORIES, "--data", TEXT, "--seq", "9999", "-o", x],
      1,
      /--seq 9999 is longer than training attention takes at head size 8 \(9360 positions\) — pass --seq 9360/,
    ],
  ];
  for (const [args, code, pattern] of cases) {
    assertOneLineError(await runCli(args), code, pattern, args.join(" "));
    await rejects(Deno.stat(x), Deno.errors.NotFound, `${args.join(" ")} left ${x}`);
  }
  await Deno.remove(join(x, ".."));
});
