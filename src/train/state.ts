/**
 * A resumable training run's state in one file, written atomically: every trainable parameter's values and
 * AdamW moments as f32 tensors (`NAME`, `NAME.adam_m`, `NAME.adam_v`), and in the header's metadata the step,
 * the data position and the settings the run was started with. One file, so a run killed at any moment finds
 * either the previous state or the new one, never half of each.
 */

import { join } from "node:path";
import { commitFile, tempPathFor } from "./atomic.ts";
import {
  readSafetensorsHeader,
  readTensorBytes,
  type TensorToWrite,
  writeSafetensors,
} from "../model/safetensors.ts";
import { TrainError } from "./errors.ts";
import type { Param, ParamStore } from "./params.ts";

export const STATE_FILE = "train_state.safetensors";

/** What a resumed run needs besides the parameters. */
export interface RunState {
  /** Steps done. */
  step: number;
  /** The data's position (src/train/data), JSON. */
  data: unknown;
  /** The settings that decide the run; a resume must match them. */
  settings: Record<string, unknown>;
}

const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Writes the state of `store`'s trainable parameters and `run` to `dir`/STATE_FILE, atomically. */
export async function saveState(dir: string, store: ParamStore, run: RunState): Promise<void> {
  const tensors: TensorToWrite[] = [];
  for (const p of store.trainable()) {
    for (const [suffix, which] of [["", "value"], [".adam_m", "m"], [".adam_v", "v"]] as const) {
      const values = await store.read(p, which);
      tensors.push({ name: p.name + suffix, dtype: "F32", shape: p.shape, data: bytesOf(values) });
    }
  }
  const path = join(dir, STATE_FILE), tmp = tempPathFor(path);
  await writeSafetensors(tmp, tensors, { flexidepth_train: JSON.stringify(run) });
  await commitFile(tmp, path);
}

/** The state in `dir`, or null when there is none. */
export async function readRunState(dir: string): Promise<RunState | null> {
  const path = join(dir, STATE_FILE);
  try {
    await Deno.stat(path);
  } catch {
    return null;
  }
  return JSON.parse(await metadataOf(path)) as RunState;
}

/** The training metadata in a state file's header (read alone: the tensors may be large). */
async function metadataOf(path: string): Promise<string> {
  using file = await Deno.open(path);
  const size = new Uint8Array(8);
  await file.read(size);
  const headerLength = Number(new DataView(size.buffer).getBigUint64(0, true));
  const bytes = new Uint8Array(headerLength);
  for (let off = 0; off < headerLength;) {
    const n = await file.read(bytes.subarray(off));
    if (n === null) throw new TrainError(`${path} is truncated`, "remove it and start the run again");
    off += n;
  }
  const header = JSON.parse(new TextDecoder().decode(bytes));
  const meta = header.__metadata__?.flexidepth_train;
  if (typeof meta !== "string") {
    throw new TrainError(`${path} holds no training state`, "remove it, or give another -o folder");
  }
  return meta;
}

/** Loads the parameters' values and moments from `dir`/STATE_FILE into `store`. */
export async function loadState(dir: string, store: ParamStore): Promise<void> {
  const path = join(dir, STATE_FILE);
  const infos = new Map((await readSafetensorsHeader(path)).map((t) => [t.name, t]));
  const read = async (p: Param, name: string) => {
    const info = infos.get(name);
    if (!info || info.dtype !== "F32" || info.shape.join() !== p.shape.join()) {
      throw new TrainError(
        `${path} has no tensor ${name} [${p.shape}] in F32`,
        "resume with the settings it was made with",
      );
    }
    const bytes = await readTensorBytes(info);
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  };
  for (const p of store.trainable()) {
    store.write(p, "value", await read(p, p.name));
    store.write(p, "m", await read(p, p.name + ".adam_m"));
    store.write(p, "v", await read(p, p.name + ".adam_v"));
  }
}
