/** `flexidepth pull`: a Hugging Face model repo into the shared Hugging Face cache. */

import { numberFlag, parseCommandFlags } from "./args.ts";
import { UsageError } from "../errors.ts";
import { parseRepoRef } from "../hub/cache.ts";
import { formatBytes } from "../util/format.ts";

export const PULL_HELP =
  `flexidepth pull — download a model (or a dataset) from the Hugging Face Hub into the Hugging Face cache

Usage:
  flexidepth pull ORG/NAME[@REVISION] [options]

Options:
  --dataset        a dataset repo (its parquet files, README and licence), for 'flexidepth eval'
  --revision R     branch, tag or commit (default main)
  --all            every file of the repo (default: only what flexidepth reads — config.json,
                   generation_config.json, tokenizer.json, tokenizer_config.json, *.safetensors and
                   their index, chat_template.jinja — plus README and LICENSE)
  --retries N      resume an interrupted file up to N times before giving up (default 3)
  -h, --help       this help

Files go where huggingface_hub puts them ($HF_HUB_CACHE, else $HF_HOME/hub, else
~/.cache/huggingface/hub), so a model pulled here is shared with transformers, huggingface-cli and
the like, and 'flexidepth run --model ORG/NAME' finds models those tools downloaded. Files are checked
(size, and sha256 for LFS files); an interrupted pull resumes where it stopped when run again.

Environment:
  HF_TOKEN         access token for gated or private repos (else the one 'hf auth login' saved)
  HF_ENDPOINT      the hub (default https://huggingface.co)
  HF_HUB_CACHE     the cache folder; HF_HOME moves it to $HF_HOME/hub

Examples:
  flexidepth pull unsloth/Llama-3.2-1B-Instruct
  flexidepth run "Why is the sky blue?" --model unsloth/Llama-3.2-1B-Instruct
  flexidepth pull --dataset allenai/ai2_arc && flexidepth eval arc_easy --model unsloth/Llama-3.2-1B-Instruct -o arc/
`;

const OPTIONS = {
  dataset: { type: "boolean" },
  revision: { type: "string" },
  all: { type: "boolean" },
  retries: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

export async function pullCommand(argv: string[]): Promise<number> {
  const flags = parseCommandFlags("pull", argv, OPTIONS, PULL_HELP);
  if (!flags) return 0;
  const { values: v, positionals } = flags;
  if (positionals.length !== 1) {
    throw new UsageError(
      positionals.length ? "pull: give one repo id" : "pull: which model? give a repo id like ORG/NAME",
      "e.g. flexidepth pull unsloth/Llama-3.2-1B-Instruct",
    );
  }
  const ref = parseRepoRef(positionals[0]);
  if (!ref) {
    throw new UsageError(
      `pull: "${positionals[0]}" is not a Hugging Face repo id`,
      "give it as ORG/NAME or ORG/NAME@REVISION, e.g. unsloth/Llama-3.2-1B-Instruct",
    );
  }
  if (ref.revision && v.revision && ref.revision !== v.revision) {
    throw new UsageError(`pull: two revisions given (@${ref.revision} and --revision ${v.revision})`);
  }
  const retries = numberFlag(v.retries, "--retries", 3, { min: 0, max: 100, integer: true });

  // Loaded here, so the other commands do not pay for the hub client.
  const { pull } = await import("../hub/pull.ts");
  const result = await pull({
    repo: ref.repo,
    type: v.dataset ? "dataset" : "model",
    revision: v.revision ?? ref.revision,
    all: v.all ?? false,
    retries,
    log: (line) => console.error(line),
  });
  const fetched = result.files.filter((f) => f.downloaded).length;
  console.error(
    `pulled ${result.repo}@${result.commit.slice(0, 10)}: ${result.files.length} files ` +
      `(${fetched} downloaded, ${formatBytes(result.bytesDownloaded)})`,
  );
  const id = `${result.repo}${result.revision === "main" ? "" : `@${result.revision}`}`;
  console.error(
    v.dataset ? `flexidepth eval reads it from the cache` : `run it: flexidepth run --model ${id}`,
  );
  console.log(result.snapshotDir);
  return 0;
}
