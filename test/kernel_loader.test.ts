/**
 * The kernel loader's `//! use` directive: libraries resolved transitively, each once, after the kernel's own
 * text; a missing library or one holding a global directive is refused with a GpuError that names it. Then
 * every shipped kernel resolves and compiles.
 */

import { deepStrictEqual as assertEquals, match, ok, rejects, throws } from "node:assert/strict";
import { GpuError } from "../src/errors.ts";
import { KernelCache, kernelSource } from "../src/gpu/kernels.ts";
import { testGpu } from "./harness.ts";

/** A temporary kernel directory holding `files` (path → text). */
async function kernelDir(files: Record<string, string>): Promise<URL> {
  const dir = await Deno.makeTempDir({ prefix: "flexidepth-kernels-" });
  await Deno.mkdir(`${dir}/lib`);
  for (const [path, text] of Object.entries(files)) await Deno.writeTextFile(`${dir}/${path}`, text);
  return new URL(`file://${dir}/`);
}

const count = (text: string, part: string) => text.split(part).length - 1;

Deno.test("kernel loader: libraries resolve transitively, each once, after the kernel's own text", async () => {
  const dir = await kernelDir({
    "k.wgsl": "//! use lib/a.wgsl\n//! use lib/c.wgsl\nfn kernel_fn() {}\n",
    "lib/a.wgsl": "//! use lib/b.wgsl\n//! use lib/c.wgsl\nfn a_fn() {}\n",
    "lib/b.wgsl": "//! use lib/c.wgsl\n//! use lib/a.wgsl\nfn b_fn() {}\n", // a cycle back to a
    "lib/c.wgsl": "fn c_fn() {}\n",
  });
  const src = kernelSource("k", dir);
  ok(src.startsWith("//! use lib/a.wgsl\n//! use lib/c.wgsl\nfn kernel_fn() {}\n"), src);
  for (const fn of ["a_fn", "b_fn", "c_fn", "kernel_fn"]) assertEquals(count(src, `fn ${fn}()`), 1, fn);
  ok(src.indexOf("fn kernel_fn") < Math.min(src.indexOf("fn a_fn"), src.indexOf("fn b_fn")));
});

Deno.test("kernel loader: sources stay cached", async () => {
  const dir = await kernelDir({ "k.wgsl": "//! use lib/a.wgsl\n", "lib/a.wgsl": "fn first() {}\n" });
  const src = kernelSource("k", dir);
  await Deno.writeTextFile(new URL("lib/a.wgsl", dir), "fn second() {}\n");
  assertEquals(kernelSource("k", dir), src);
});

Deno.test("kernel loader: a missing library is a GpuError naming the kernel, the library and the fix", async () => {
  const dir = await kernelDir({
    "k.wgsl": "//! use lib/a.wgsl\n",
    "lib/a.wgsl": "//! use lib/gone.wgsl\n",
  });
  throws(() => kernelSource("k", dir), (e: unknown) => {
    ok(e instanceof GpuError, String(e));
    match(e.message, /kernel "k": library lib\/gone\.wgsl \(used by lib\/a\.wgsl\) not found/);
    match(e.message, /correct the "\/\/! use lib\/gone\.wgsl" line in kernels\/lib\/a\.wgsl/);
    return true;
  });
  throws(() => kernelSource("none", dir), GpuError);
});

Deno.test("kernel loader: a library holding enable, requires or diagnostic is refused", async () => {
  const dir = await kernelDir({
    "ok.wgsl": "enable f16;\n//! use lib/mentions.wgsl\n",
    "lib/mentions.wgsl": "// a comment may say enable f16; and requires x;\nfn f() {}\n",
    "k1.wgsl": "//! use lib/enable.wgsl\n",
    "lib/enable.wgsl": "fn f() {}\nenable f16;\n",
    "k2.wgsl": "//! use lib/deep.wgsl\n",
    "lib/deep.wgsl": "//! use lib/requires.wgsl\n",
    "lib/requires.wgsl": "requires readonly_and_readwrite_storage_textures;\n",
    "k3.wgsl": "//! use lib/diagnostic.wgsl\n",
    "lib/diagnostic.wgsl": "diagnostic(off, derivative_uniformity);\n",
  });
  ok(kernelSource("ok", dir).startsWith("enable f16;\n"));
  for (
    const [kernel, lib, word] of [["k1", "enable", "enable"], ["k2", "requires", "requires"], [
      "k3",
      "diagnostic",
      "diagnostic",
    ]]
  ) {
    throws(() => kernelSource(kernel, dir), (e: unknown) => {
      ok(e instanceof GpuError, String(e));
      match(
        e.message,
        new RegExp(`kernel "${kernel}": library lib/${lib}\\.wgsl holds the global directive "${word}"`),
      );
      return true;
    });
  }
});

Deno.test("kernel cache: engines on one device share pipelines; a compile error reaches every cache using it", async () => {
  const gpu = await testGpu("fast");
  const dir = await kernelDir({
    "good.wgsl": "override N: u32 = 1u;\n@compute @workgroup_size(1) fn main() { _ = N; }\n",
    "bad.wgsl": "@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }\n",
  });
  const a = new KernelCache(gpu, dir), b = new KernelCache(gpu, dir);
  ok(a.get("good", { N: 2 }) === b.get("good", { N: 2 }), "the same pipeline for the same constants");
  ok(a.get("good", { N: 2 }) !== a.get("good", { N: 3 }), "other constants, another pipeline");
  ok(a.get("good") !== new KernelCache(gpu).get("rmsnorm"), "kernel directories are kept apart");
  await a.checkErrors();
  a.get("bad");
  b.get("bad");
  for (const cache of [a, b]) {
    await rejects(cache.checkErrors(), (e: Error) => e instanceof GpuError && /kernel bad/.test(e.message));
  }
  await new KernelCache(gpu, dir).checkErrors(); // a cache that never asked for it
});

Deno.test("kernel loader: every shipped kernel resolves and compiles; every library is used", async () => {
  const gpu = await testGpu("fast");
  const dir = new URL("../kernels/", import.meta.url);
  const used = new Set<string>();
  for (const entry of Deno.readDirSync(dir)) {
    if (!entry.name.endsWith(".wgsl")) continue;
    const name = entry.name.slice(0, -".wgsl".length);
    const src = kernelSource(name);
    for (const [, lib] of src.matchAll(/^\/\/! use[ \t]+(\S+)/gm)) used.add(lib);
    gpu.device.pushErrorScope("validation");
    const module = gpu.device.createShaderModule({ label: name, code: src });
    const errors = (await module.getCompilationInfo()).messages.filter((m) => m.type === "error");
    const scope = await gpu.device.popErrorScope();
    assertEquals([...errors.map((m) => m.message), scope?.message].filter(Boolean), [], name);
  }
  const libs = [...Deno.readDirSync(new URL("lib/", dir))].map((e) => `lib/${e.name}`).sort();
  assertEquals(libs.filter((l) => !used.has(l)), [], "libraries no kernel uses");
});
