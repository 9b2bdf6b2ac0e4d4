/**
 * The code's shape, checked over every TypeScript file of the project (src/, test/, bench/, models/,
 * main.ts) and every kernel: no function over 80 lines, no file over 400 lines unless its opening comment
 * says why ("Over 400 lines: …"), and no module of src/ but the backend profile asks what the GPU is.
 */

import { ok } from "node:assert/strict";
import ts from "typescript";

const ROOT = new URL("../", import.meta.url);
const MAX_FUNCTION_LINES = 80;
const MAX_FILE_LINES = 400;
/** Folders that hold no code of the project: installed packages, build output, scratch (git-ignored). */
const NOT_CODE = new Set(["node_modules", "dist", "tmp", "runs", ".cache", ".git"]);

function sourceFiles(dir: URL, ext: string, out: URL[] = []): URL[] {
  for (const e of Deno.readDirSync(dir)) {
    const url = new URL(e.name + (e.isDirectory ? "/" : ""), dir);
    if (e.isDirectory && !NOT_CODE.has(e.name)) sourceFiles(url, ext, out);
    else if (e.isFile && e.name.endsWith(ext)) out.push(url);
  }
  return out;
}

function read(dir: string, ext: string) {
  return sourceFiles(new URL(dir, ROOT), ext).map((url) => ({
    name: url.pathname.slice(ROOT.pathname.length),
    text: Deno.readTextFileSync(url),
  }));
}

const files = [
  ...["src/", "test/", "bench/", "models/"].flatMap((dir) => read(dir, ".ts")),
  { name: "main.ts", text: Deno.readTextFileSync(new URL("main.ts", ROOT)) },
];
const srcFiles = files.filter((f) => f.name.startsWith("src/"));
const kernels = read("kernels/", ".wgsl");

function lineCount(text: string): number {
  return text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
}

/** Functions, methods, constructors and arrow functions with bodies longer than `max` lines. */
export function longFunctions(name: string, text: string, max: number): string[] {
  const sf = ts.createSourceFile(name, text, ts.ScriptTarget.Latest, true);
  const long: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && (node as ts.FunctionLikeDeclaration).body) {
      const first = sf.getLineAndCharacterOfPosition(node.getStart()).line;
      const last = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      const named = (node as ts.FunctionLikeDeclaration).name?.getText(sf) ?? ts.SyntaxKind[node.kind];
      if (last - first + 1 > max) long.push(`${name}:${first + 1} ${named} (${last - first + 1} lines)`);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return long;
}

/** WGSL functions (`fn` at the start of a line, up to the first `}` there) longer than `max` lines. */
export function longKernelFunctions(name: string, text: string, max: number): string[] {
  const lines = text.split("\n");
  const long: string[] = [];
  lines.forEach((line, first) => {
    const fn = /^fn (\w+)/.exec(line);
    if (!fn) return;
    const last = lines.findIndex((l, i) => i > first && l.startsWith("}"));
    const n = (last < 0 ? lines.length : last + 1) - first;
    if (n > max) long.push(`${name}:${first + 1} ${fn[1]} (${n} lines)`);
  });
  return long;
}

Deno.test("style: no function is over 80 lines", () => {
  const long = files.flatMap((f) => longFunctions(f.name, f.text, MAX_FUNCTION_LINES));
  ok(long.length === 0, `split these into named steps:\n${long.join("\n")}`);
});

Deno.test("style: no kernel function is over 80 lines", () => {
  const long = kernels.flatMap((f) => longKernelFunctions(f.name, f.text, MAX_FUNCTION_LINES));
  ok(long.length === 0, `split these into named steps:\n${long.join("\n")}`);
});

Deno.test("style: the length checks find a long function", () => {
  const body = Array.from({ length: 90 }, (_, i) => `  const v${i} = ${i};`).join("\n");
  ok(longFunctions("x.ts", `function f() {\n${body}\n}\n`, MAX_FUNCTION_LINES).length === 1);
  ok(longFunctions("x.ts", "const f = () => 1;\n", MAX_FUNCTION_LINES).length === 0);
  const wgsl = body.replaceAll("const", "let");
  ok(longKernelFunctions("x.wgsl", `fn f() {\n${wgsl}\n}\n`, MAX_FUNCTION_LINES).length === 1);
  ok(
    longKernelFunctions("x.wgsl", `fn f() {\n  if (true) {\n  }\n}\nfn g() {\n${wgsl}\n}\n`, 80).length === 1,
  );
  ok(longKernelFunctions("x.wgsl", "fn f() -> u32 {\n  return 1u;\n}\n", MAX_FUNCTION_LINES).length === 0);
});

Deno.test("style: no file is over 400 lines unless it says why at its top", () => {
  const long = files.filter((f) =>
    lineCount(f.text) > MAX_FILE_LINES && !/^\/\*\*[^]*?Over 400 lines: /.test(f.text.slice(0, 2000))
  );
  ok(long.length === 0, `split these into modules with one job: ${long.map((f) => f.name).join(", ")}`);
});

Deno.test("style: no kernel file is over 400 lines", () => {
  const long = kernels.filter((f) => lineCount(f.text) > MAX_FILE_LINES);
  ok(long.length === 0, `move shared pieces to kernels/lib/: ${long.map((f) => f.name).join(", ")}`);
});

Deno.test("style: only the backend profile asks whether the GPU is a software one", () => {
  // The adapter's name and fallback flag decide the kernel family; everything else reads the profile.
  const asking = srcFiles.filter((f) =>
    /llvmpipe\|lavapipe|isFallbackAdapter\b(?!\?:)/.test(f.text.replace(/\/\/.*|\/\*[^]*?\*\//g, ""))
  );
  ok(
    asking.every((f) => f.name === "src/gpu/profile.ts"),
    `these ask what the GPU is: ${asking.map((f) => f.name).join(", ")}`,
  );
});
