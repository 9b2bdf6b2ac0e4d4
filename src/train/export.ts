/**
 * A trained model as a Hugging Face checkpoint folder that `flexidepth run` loads as it is: config.json,
 * model.safetensors, the tokenizer files (and generation_config.json) copied from where the run got them. A
 * base's tensors that did not train are copied byte for byte; trained ones are read back from the GPU and
 * written in `dtype` (a 16-bit dtype rounds them, as saving in bf16 does). Every file is written atomically.
 */

import { join } from "node:path";
import type { Checkpoint } from "../model/checkpoint.ts";
import { type DType, encodeFromF32 } from "../model/dtype.ts";
import { readTensorBytes, type TensorToWrite, writeSafetensors } from "../model/safetensors.ts";
import { commitFile, tempPathFor, writeFileAtomic } from "./atomic.ts";
import type { ParamStore } from "./params.ts";

export interface ExportOptions {
  /** The folder to write (created if missing). */
  out: string;
  config: Record<string, unknown>;
  store: ParamStore;
  /** The base checkpoint: its untrained tensors are copied (null: every tensor comes from the store). */
  base: Checkpoint | null;
  /** The folder whose tokenizer.json, tokenizer_config.json and generation_config.json are copied. */
  tokenizerDir: string;
  /** The dtype of tensors read from the store. */
  dtype: DType;
}

const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "generation_config.json"];

export async function exportModel(o: ExportOptions): Promise<void> {
  await Deno.mkdir(o.out, { recursive: true });
  const tensors: TensorToWrite[] = [];
  const fromStore = o.store.all().filter((p) => p.grad !== null || !o.base?.tensors.has(p.name));
  const stored = new Set(fromStore.map((p) => p.name));
  for (const info of o.base?.tensors.values() ?? []) {
    if (stored.has(info.name)) continue;
    tensors.push({
      name: info.name,
      dtype: info.dtype,
      shape: info.shape,
      data: await readTensorBytes(info),
    });
  }
  for (const p of fromStore) {
    const values = await o.store.read(p);
    tensors.push({ name: p.name, dtype: o.dtype, shape: p.shape, data: encodeFromF32(o.dtype, values) });
  }
  tensors.sort((a, b) => a.name.localeCompare(b.name));
  const path = join(o.out, "model.safetensors"), tmp = tempPathFor(path);
  await writeSafetensors(tmp, tensors, { format: "pt", flexidepth: "trained by flexidepth train" });
  await commitFile(tmp, path);
  await writeFileAtomic(join(o.out, "config.json"), JSON.stringify(o.config, null, 2) + "\n");
  for (const file of TOKENIZER_FILES) {
    const from = join(o.tokenizerDir, file);
    const data = await Deno.readFile(from).catch(() => null);
    if (data) await writeFileAtomic(join(o.out, file), data);
  }
}
