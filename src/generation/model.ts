/** A loaded model: checkpoint + tokenizer + GPU engine, and sessions to generate with. */

import { type Checkpoint, openCheckpoint } from "../model/checkpoint.ts";
import { type FeatureMode, type GpuContext, openGpu } from "../gpu/device.ts";
import { wantsInlineDispatch } from "../gpu/profile.ts";
import { ProgressBar } from "../ui/progress.ts";
import { TextTokenizer } from "../tokenizer/tokenizer.ts";
import { Engine, type EngineOptions } from "../engine/engine.ts";
import { type GenerateOptions, Generation, type PromptInput } from "./generate.ts";
import { Session } from "./session.ts";

export interface LoadOptions extends EngineOptions {
  gpu?: GpuContext;
  features?: FeatureMode;
  /** A progress bar on stderr while the weights load (default true). */
  progress?: boolean;
}

export class Model {
  private constructor(
    readonly checkpoint: Checkpoint,
    readonly tokenizer: TextTokenizer,
    readonly engine: Engine,
  ) {}

  static async load(dir: string, opts: LoadOptions = {}): Promise<Model> {
    return Model.fromCheckpoint(await openCheckpoint(dir), opts);
  }

  /** A model from an opened (or synthetic) checkpoint. */
  static async fromCheckpoint(ck: Checkpoint, opts: LoadOptions = {}): Promise<Model> {
    const tokenizer = await TextTokenizer.load(ck.tokenizerJsonPath, ck.tokenizerConfig, {
      bosTokenId: ck.config.bosTokenId,
      eosTokenIds: ck.eosTokenIds,
    });
    const gpu = opts.gpu ??
      await openGpu({
        features: opts.features,
        profile: opts.profile,
        smallDispatches: wantsInlineDispatch(ck),
      });
    const bar = opts.progress === false ? null : new ProgressBar("loading weights", ck.totalBytes, "bytes");
    const engine = await Engine.load(gpu, ck, {
      ...opts,
      onProgress: bar ? (done) => bar.update(done) : undefined,
    });
    bar?.finish();
    return new Model(ck, tokenizer, engine);
  }

  /** A new sequence with its own KV slot (a chat keeps one across turns). */
  newSession(): Session {
    return new Session(this.engine, this.engine.allocSlot());
  }

  closeSession(s: Session): void {
    this.engine.releaseSlot(s.slot);
  }

  /**
   * Generates from a raw prompt (string) or chat messages (rendered with the model's template).
   * Without a session, a temporary one is used and released at the end.
   */
  generate(input: PromptInput, opts: GenerateOptions = {}, session?: Session): Generation {
    const s = session ?? this.newSession();
    const gen = new Generation(this.tokenizer, s, input, opts);
    if (!session) gen.summary.finally(() => this.closeSession(s)).catch(() => this.closeSession(s));
    return gen;
  }
}
