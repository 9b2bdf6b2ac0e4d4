/** Temporary folders for tests: made fresh for one test body and removed after it, whatever happens. */

/** A `withTempDir(fn)` that runs `fn` in a new folder named with `prefix`, then removes the folder. */
export function tempDirs(prefix: string): (fn: (dir: string) => Promise<void>) => Promise<void> {
  return async (fn) => {
    const dir = await Deno.makeTempDir({ prefix });
    try {
      await fn(dir);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  };
}
