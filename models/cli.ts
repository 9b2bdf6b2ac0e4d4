/** The builder's way to run flexidepth's own commands: main.ts in a child Deno, from the repository root. */

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** Runs `flexidepth ARGS…` with the terminal's stdout and stderr; throws when it fails. */
export async function runCli(args: string[]): Promise<void> {
  console.error(`\n$ flexidepth ${args.join(" ")}`);
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code === 130) {
    console.error("interrupted: run `deno task models` again to resume where it stopped");
    Deno.exit(130);
  }
  if (code !== 0) throw new Error(`flexidepth ${args[0]} exited with ${code}: fix what it printed and rerun`);
}

/** Runs `flexidepth ARGS…` and parses its stdout as JSON Lines. */
export async function cliJson(args: string[]): Promise<Array<Record<string, unknown>>> {
  const { code, stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (code !== 0) throw new Error(`flexidepth ${args[0]} exited with ${code}`);
  return new TextDecoder().decode(stdout).split("\n").filter((l) => l.trim() !== "").map((l) =>
    JSON.parse(l)
  );
}

/** `deno fmt` on written files or folders, so they pass the repository's `deno fmt --check`. */
export async function formatFiles(paths: string[]): Promise<void> {
  const { code } = await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", ...paths] }).output();
  if (code !== 0) throw new Error(`deno fmt ${paths.join(" ")} exited with ${code}`);
}
