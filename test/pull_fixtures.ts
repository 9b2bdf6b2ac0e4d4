/**
 * What the pull tests (test/pull*.test.ts) share: environment variables set for the length of a call, and
 * the Hugging Face variables all unset.
 */

/** Sets env vars (undefined = unset) for the duration of fn. */
export async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, Deno.env.get(k)]));
  const apply = (v: Record<string, string | undefined>) => {
    for (const [k, value] of Object.entries(v)) {
      value === undefined ? Deno.env.delete(k) : Deno.env.set(k, value);
    }
  };
  apply(vars);
  try {
    return await fn();
  } finally {
    apply(saved);
  }
}

/** The Hugging Face cache variables and FLEXIDEPTH_MODEL, unset. */
export const NO_HF_ENV = {
  HF_HUB_CACHE: undefined,
  HUGGINGFACE_HUB_CACHE: undefined,
  HF_HOME: undefined,
  FLEXIDEPTH_MODEL: undefined,
};
