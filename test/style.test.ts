/**
 * The code's shape, checked: no function in src/ over 80 lines, no file over 400 lines unless its opening
 * comment says why ("Over 400 lines: …"), and no module but the backend profile asks what the GPU is.
 */

import { ok } from "node:assert/strict";
import ts from "typescript";

const SRC = new URL("../src/", import.meta.url);
const MAX_FUNCTION_LINES = 80;
const MAX_FILE_LINES = 400;

function sourceFiles(dir: URL, out: URL[] = []): URL[] {
  for (const e of Deno.readDirSync(dir)) {
    const url = new URL(e.name + (e.isDirectory ? "/" : ""), dir);
    if (e.isDirectory) sourceFiles(url, out);
    else if (e.name.endsWith(".ts")) out.push(url);
  }
  return out;
}

const files = sourceFiles(SRC).map((url) => ({
  name: url.pathname.slice(SRC.pathname.length),
  text: Deno.readTextFileSync(url),
}));

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

Deno.test("style: no function in src/ is over 80 lines", () => {
  const long = files.flatMap((f) => longFunctions(f.name, f.text, MAX_FUNCTION_LINES));
  ok(long.length === 0, `split these into named steps:\n${long.join("\n")}`);
});

Deno.test("style: the length check finds a long function", () => {
  const body = Array.from({ length: 90 }, (_, i) => `  const v${i} = ${i};`).join("\n");
  ok(longFunctions("x.ts", `function f() {\n${body}\n}\n`, MAX_FUNCTION_LINES).length === 1);
  ok(longFunctions("x.ts", "const f = () => 1;\n", MAX_FUNCTION_LINES).length === 0);
});

Deno.test("style: no file in src/ is over 400 lines unless it says why at its top", () => {
  const long = files.filter((f) => {
    const lines = f.text.split("\n").length - (f.text.endsWith("\n") ? 1 : 0);
    return lines > MAX_FILE_LINES && !/^\/\*\*[^]*?Over 400 lines: /.test(f.text.slice(0, 2000));
  });
  ok(long.length === 0, `split these into modules with one job: ${long.map((f) => f.name).join(", ")}`);
});

Deno.test("style: only the backend profile asks whether the GPU is a software one", () => {
  // The adapter's name and fallback flag decide the kernel family; everything else reads the profile.
  const asking = files.filter((f) =>
    /llvmpipe\|lavapipe|isFallbackAdapter\b(?!\?:)/.test(f.text.replace(/\/\/.*|\/\*[^]*?\*\//g, ""))
  );
  ok(
    asking.every((f) => f.name === "gpu/profile.ts"),
    `these ask what the GPU is: ${asking.map((f) => f.name).join(", ")}`,
  );
});
