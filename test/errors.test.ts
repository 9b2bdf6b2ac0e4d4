/**
 * Bad input reaches the user as one clear line and a non-zero exit, never a stack dump: the real CLI,
 * run as a subprocess, on broken checkpoint folders and prompts.
 */

import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { writeDemoCheckpoint } from "../src/model/demo.ts";
import { kernelFamily, SOFTWARE_MAX_CONTEXT } from "../src/gpu/profile.ts";
import { openGpu } from "../src/gpu/device.ts";
import { assertOneLineError, runCli } from "./cli_harness.ts";

const STORIES = new URL("../../shared/models/stories260K", import.meta.url).pathname;
const tmp = await Deno.makeTempDir({ prefix: "flexidepth-errors-test-" });

const cli = (args: string[], stdin = "hello") => runCli(args, stdin);

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
  assertOneLineError(await run(`${tmp}/nope`), "non-zero", /not found.*--model/);
});

Deno.test("error: missing file (tokenizer.json)", async () => {
  const dir = await brokenCopy("no-tokenizer", (d) => Deno.remove(`${d}/tokenizer.json`));
  assertOneLineError(await run(dir), "non-zero", /tokenizer\.json/);
});

Deno.test("error: truncated safetensors", async () => {
  const dir = await brokenCopy("truncated", async (d) => {
    const f = `${d}/model.safetensors`;
    await Deno.truncate(f, (await Deno.stat(f)).size - 100);
  });
  assertOneLineError(await run(dir), "non-zero", /model\.safetensors.*(truncated|past|beyond|out of range)/i);
});

Deno.test("error: safetensors header length past the end of the file", async () => {
  const dir = await brokenCopy("header-len", async (d) => {
    const f = await Deno.open(`${d}/model.safetensors`, { write: true });
    await f.write(new Uint8Array([0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0]));
    f.close();
  });
  assertOneLineError(await run(dir), "non-zero", /model\.safetensors.*header/i);
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
    assertOneLineError(await run(dir), "non-zero", pattern, name);
  }
});

Deno.test("error: config with a missing key, and an unsupported architecture", async () => {
  const missing = await brokenCopy("config-missing", async (d) => {
    const c = JSON.parse(await Deno.readTextFile(`${d}/config.json`));
    delete c.hidden_size;
    await Deno.writeTextFile(`${d}/config.json`, JSON.stringify(c));
  });
  assertOneLineError(await run(missing), "non-zero", /hidden_size/);
  const arch = await brokenCopy("config-arch", async (d) => {
    const c = JSON.parse(await Deno.readTextFile(`${d}/config.json`));
    c.model_type = "gpt2";
    await Deno.writeTextFile(`${d}/config.json`, JSON.stringify(c));
  });
  assertOneLineError(await run(arch), "non-zero", /unsupported architecture "gpt2"/);
});

Deno.test("error: prompt longer than the context, with the numbers", async () => {
  const r = await cli(
    ["run", "--model", STORIES, "--raw", "--context", "16"],
    "Once upon a time ".repeat(20),
  );
  assertOneLineError(r, "non-zero", /prompt has \d+ tokens but the context holds 16/);
});

Deno.test("error: a context longer than a software GPU's attention covers", async () => {
  const dir = await brokenCopy("long-context", async (d) => {
    const c = JSON.parse(await Deno.readTextFile(`${d}/config.json`));
    c.max_position_embeddings = 100_000;
    await Deno.writeTextFile(`${d}/config.json`, JSON.stringify(c));
  });
  const args = ["run", "--model", dir, "--max-tokens", "2", "--raw", "--context"];
  const over = await cli([...args, String(SOFTWARE_MAX_CONTEXT + 1)]);
  const limit = /attention on a software GPU/;
  if (kernelFamily(await openGpu()) === "software") {
    assertOneLineError(over, "non-zero", new RegExp(`pass --context ${SOFTWARE_MAX_CONTEXT} or less`));
  } else {
    assertEquals(limit.test(over.stderr), false, "a hardware GPU's split attention has no such limit");
  }
  // At the limit the engine loads (this random checkpoint then stops at its tokenizer, as any run of it would).
  const at = await cli([...args, String(SOFTWARE_MAX_CONTEXT)]);
  assertEquals(limit.test(at.stderr), false, at.stderr);
  assertOneLineError(at, "non-zero", /outside the model's vocabulary/);
});

Deno.test("error: bad flags exit 2 with one line", async () => {
  const unknown = await cli(["run", "--model", STORIES, "--bogus"]);
  assertEquals(unknown.code, 2);
  assertOneLineError(unknown, 2, /bogus/);
  const bad = await cli(["run", "--model", STORIES, "--temperature", "hot"]);
  assertEquals(bad.code, 2);
  assertOneLineError(bad, 2, /--temperature must be a number/);
});

Deno.test("error: a Qwen config with a sliding window, or DMTD keys that do not add up, is one line with the fix", async () => {
  const window = await brokenCopy("sliding-window", async (d) => {
    const c = JSON.parse(await Deno.readTextFile(`${d}/config.json`));
    Object.assign(c, { model_type: "qwen2", use_sliding_window: true, sliding_window: 4096 });
    await Deno.writeTextFile(`${d}/config.json`, JSON.stringify(c));
  });
  assertOneLineError(
    await run(window),
    "non-zero",
    /sliding-window attention .* set use_sliding_window to false/,
  );
  const dmtd = await brokenCopy("dmtd-split", async (d) => {
    const c = JSON.parse(await Deno.readTextFile(`${d}/config.json`));
    Object.assign(c, {
      model_type: "dmtdqwen3",
      num_thinking_layers: 1,
      num_decoding_layers: 1,
      mtp_horizon: 4,
    });
    await Deno.writeTextFile(`${d}/config.json`, JSON.stringify(c));
  });
  assertOneLineError(
    await run(dmtd),
    "non-zero",
    /num_thinking_layers 1 \+ num_decoding_layers 1 is not .* add up to 1/,
  );
});
