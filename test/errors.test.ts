/**
 * Bad input reaches the user as one clear line and a non-zero exit, never a stack dump: the real CLI,
 * run as a subprocess, on broken checkpoint folders and prompts.
 */

import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { writeDemoCheckpoint } from "../src/model/demo.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const STORIES = new URL("../../shared/models/stories260K", import.meta.url).pathname;
const tmp = await Deno.makeTempDir({ prefix: "flexidepth-errors-test-" });

async function cli(
  args: string[],
  stdin = "hello",
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", ...args],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { FLEXIDEPTH_NO_PROGRESS: "1" },
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Exactly one `error: …` line matching `pattern`, no stack trace, non-zero exit. */
function assertOneLineError(r: { code: number; stderr: string }, pattern: RegExp) {
  ok(r.code !== 0, "exit code must be non-zero");
  const lines = r.stderr.trim().split("\n").filter((l) => l.trim());
  assertEquals(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  ok(lines[0].startsWith("error: "), lines[0]);
  ok(pattern.test(lines[0]), `${lines[0]} should match ${pattern}`);
  ok(!/\n\s+at /.test(r.stderr), "no stack trace");
}

/** A copy of a small demo checkpoint to break. */
async function brokenCopy(name: string, breakIt: (dir: string) => Promise<void>): Promise<string> {
  const dir = `${tmp}/${name}`;
  await writeDemoCheckpoint(dir, {
    layers: 1,
    hidden: 32,
    heads: 2,
    kvHeads: 1,
    headDim: 16,
    intermediate: 48,
    vocabSize: 300,
  });
  await breakIt(dir);
  return dir;
}

const run = (dir: string) => cli(["run", "--model", dir, "--max-tokens", "2", "--raw"]);

Deno.test("error: missing model folder", async () => {
  assertOneLineError(await run(`${tmp}/nope`), /not found.*--model/);
});

Deno.test("error: missing file (tokenizer.json)", async () => {
  const dir = await brokenCopy("no-tokenizer", (d) => Deno.remove(`${d}/tokenizer.json`));
  assertOneLineError(await run(dir), /tokenizer\.json/);
});

Deno.test("error: truncated safetensors", async () => {
  const dir = await brokenCopy("truncated", async (d) => {
    const f = `${d}/model.safetensors`;
    await Deno.truncate(f, (await Deno.stat(f)).size - 100);
  });
  assertOneLineError(await run(dir), /model\.safetensors.*(truncated|past|beyond|out of range)/i);
});

Deno.test("error: safetensors header length past the end of the file", async () => {
  const dir = await brokenCopy("header-len", async (d) => {
    const f = await Deno.open(`${d}/model.safetensors`, { write: true });
    await f.write(new Uint8Array([0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0]));
    f.close();
  });
  assertOneLineError(await run(dir), /model\.safetensors.*header/i);
});

Deno.test("error: unknown dtype and shape/size mismatch in the header", async () => {
  for (
    const [name, edit, pattern] of [
      ["dtype", (h: string) => h.replace(/"BF16"/, '"I4"  '), /dtype/i],
      [
        "shape",
        (h: string) =>
          h.replace(
            /"shape":\[(\d+)/,
            (_m, n) => `"shape":[${String(Number(n) + 1).padStart(n.length, "0")}`,
          ),
        /(size|shape|bytes)/i,
      ],
    ] as const
  ) {
    const dir = await brokenCopy(`header-${name}`, async (d) => {
      const bytes = await Deno.readFile(`${d}/model.safetensors`);
      const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
      const edited = new TextEncoder().encode(edit(header));
      if (edited.length !== n) throw new Error(`test edit changed the header length (${name})`);
      bytes.set(edited, 8);
      await Deno.writeFile(`${d}/model.safetensors`, bytes);
    });
    assertOneLineError(await run(dir), pattern);
  }
});

Deno.test("error: config with a missing key, and an unsupported architecture", async () => {
  const missing = await brokenCopy("config-missing", async (d) => {
    const c = JSON.parse(await Deno.readTextFile(`${d}/config.json`));
    delete c.hidden_size;
    await Deno.writeTextFile(`${d}/config.json`, JSON.stringify(c));
  });
  assertOneLineError(await run(missing), /hidden_size/);
  const arch = await brokenCopy("config-arch", async (d) => {
    const c = JSON.parse(await Deno.readTextFile(`${d}/config.json`));
    c.model_type = "gpt2";
    await Deno.writeTextFile(`${d}/config.json`, JSON.stringify(c));
  });
  assertOneLineError(await run(arch), /unsupported architecture "gpt2"/);
});

Deno.test("error: prompt longer than the context, with the numbers", async () => {
  const r = await cli(
    ["run", "--model", STORIES, "--raw", "--context", "16"],
    "Once upon a time ".repeat(20),
  );
  assertOneLineError(r, /prompt has \d+ tokens but the context holds 16/);
});

Deno.test("error: bad flags exit 2 with one line", async () => {
  const unknown = await cli(["run", "--model", STORIES, "--bogus"]);
  assertEquals(unknown.code, 2);
  assertOneLineError(unknown, /bogus/);
  const bad = await cli(["run", "--model", STORIES, "--temperature", "hot"]);
  assertEquals(bad.code, 2);
  assertOneLineError(bad, /--temperature must be a number/);
});
