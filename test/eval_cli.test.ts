/**
 * `flexidepth eval` on the command line: usage errors exit 2 with one line and the fix (before any model loads:
 * modes are checked against the checkpoint's config), data errors exit 1, --help has examples.
 */

import { ok } from "node:assert/strict";
import { assertOneLineError, runCli } from "./cli_harness.ts";

const MODELS = new URL("../../shared/models/", import.meta.url).pathname;
const PLAIN = `${MODELS}stories260K`;
const FLEXI = `${MODELS}stories260K-flexidepth`;
const out = await Deno.makeTempDir({ prefix: "flexidepth-eval-cli-" });

Deno.test("eval CLI: usage errors exit 2 with one line and the fix", async () => {
  const cases: [string[], RegExp][] = [
    [["eval"], /which tasks\? — name one or more of mmlu, hellaswag, arc_easy/],
    [["eval", "nosuch", "-o", out], /unknown task "nosuch" — use mmlu, .* or a task file ending \.json/],
    [["eval", "arc_easy"], /-o OUT is required — give a folder/],
    [["eval", "arc_easy", "-o", out, "--limit", "0"], /--limit must be an integer ≥ 1/],
    [["eval", "arc_easy", "-o", out, "--shots=-1"], /--shots must be an integer ≥ 0 and ≤ 64/],
    [
      ["eval", "arc_easy", "-o", out, "--bogus"],
      /eval: Unknown option '--bogus' — see 'flexidepth eval --help'/,
    ],
    [
      ["eval", "arc_easy", "-o", out, "--model", PLAIN, "--modes", "routed"],
      /"routed" on a model without routers — .*routing_layers/,
    ],
    [
      ["eval", "arc_easy", "-o", out, "--model", FLEXI, "--modes", "full,cycle:4"],
      /"cycle:4" on a model that is not DMTD — /,
    ],
    [["eval", "arc_easy", "-o", out, "--model", FLEXI, "--modes", "full,warp"], /unknown mode "warp"/],
  ];
  for (const [args, pattern] of cases) assertOneLineError(await runCli(args), 2, pattern, args.join(" "));
});

Deno.test("eval CLI: a data folder that does not exist is an error with the fix", async () => {
  const r = await runCli(["eval", "arc_easy", "-o", out, "--data", `${out}/none`]);
  assertOneLineError(r, 1, /the data folder .* \(--data\) does not exist — give a folder/, "--data");
});

Deno.test("eval CLI: --help and 'help eval' explain tasks, modes, outputs and the task file, with examples", async () => {
  for (const args of [["eval", "--help"], ["help", "eval"]]) {
    const r = await runCli(args);
    ok(r.code === 0, r.stderr);
    for (
      const want of [
        "threshold:G",
        "cycle:N",
        "samples.jsonl",
        "retention",
        "Task file",
        "Examples:",
        "--limit",
      ]
    ) {
      ok(r.stdout.includes(want), `${args.join(" ")}: ${want}`);
    }
  }
  const top = await runCli(["--help"]);
  ok(/eval TASK…/.test(top.stdout), "the command list names eval");
});
