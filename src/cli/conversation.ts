/**
 * A chat conversation on one model: the message history, one engine Session kept across turns (each
 * turn sends the whole history through the chat template and the engine reuses the cached prefix, so
 * earlier turns are not prefilled again), and the last turn's numbers for `/stats`.
 */

import type { Model } from "../generation/model.ts";
import type { GenerateOptions, Generation, GenerationSummary } from "../generation/generate.ts";
import type { Session } from "../generation/session.ts";
import type { ChatMessage } from "../tokenizer/tokenizer.ts";
import { InputError } from "../errors.ts";
import { openCheckpoint } from "../model/checkpoint.ts";
import { checkpointHasChatTemplate } from "./model_info.ts";

function noTemplate(name: string): InputError {
  return new InputError(
    `${name} has no chat template, so it cannot chat`,
    "use 'flexidepth run --raw PROMPT' for plain text completion, or add a chat_template to tokenizer_config.json",
  );
}

/** Fails fast — before any weight is uploaded — when the checkpoint has no chat template. */
export async function requireChatTemplate(dir: string): Promise<void> {
  if (!(await checkpointHasChatTemplate(await openCheckpoint(dir)))) throw noTemplate(dir);
}

export interface Turn {
  generation: Generation;
  /** Resolves once the answer is in the history (rejects when the turn failed; the history is unchanged). */
  done: Promise<GenerationSummary>;
}

export class Conversation {
  /** User and assistant messages (the system message is kept apart: `/reset` keeps it). */
  readonly messages: ChatMessage[] = [];
  /** Summary of the last finished turn. */
  last: GenerationSummary | null = null;
  turns = 0;
  readonly #session: Session;
  #busy = false;

  constructor(
    readonly model: Model,
    readonly system: string | undefined,
    readonly options: GenerateOptions,
  ) {
    if (!model.tokenizer.hasChatTemplate) {
      throw noTemplate(model.tokenizer.name);
    }
    this.#session = model.newSession();
  }

  /** The whole conversation as the template sees it. */
  history(): ChatMessage[] {
    return [...(this.system ? [{ role: "system", content: this.system }] : []), ...this.messages];
  }

  /** Sends a user message; iterate `generation` for the tokens, then await `done`. */
  ask(text: string, signal?: AbortSignal): Turn {
    if (this.#busy) throw new Error("a turn is already running");
    this.#busy = true;
    this.messages.push({ role: "user", content: text });
    const generation = this.model.generate(this.history(), { ...this.options, signal }, this.#session);
    const done = generation.summary.then(
      (s) => {
        this.#busy = false;
        this.messages.push({ role: "assistant", content: s.text });
        this.last = s;
        this.turns++;
        return s;
      },
      (e) => {
        this.#busy = false;
        this.messages.pop();
        throw e;
      },
    );
    done.catch(() => {}); // the iterator reports the error
    return { generation, done };
  }

  /** Forgets the messages (the system message stays; the cache still serves its prefix). */
  reset(): void {
    this.messages.length = 0;
    this.last = null;
  }

  /** The conversation as saved by `/save`. */
  toJSON(modelName: string): { model: string; messages: ChatMessage[] } {
    return { model: modelName, messages: this.history() };
  }

  close(): void {
    this.model.closeSession(this.#session);
  }
}

/** `/stats` as one line of text. */
export function statsLine(s: GenerationSummary | null, numLayers: number): string {
  if (!s) return "no answer yet";
  return `last turn: ${s.generatedTokens} tokens · ${s.decodeTokensPerSec.toFixed(1)} tokens/s · ` +
    `mean ${s.meanLayers.toFixed(2)} of ${numLayers} layers · prompt ${s.promptTokens} tokens, ` +
    `${s.reusedTokens} reused from the cache · stop: ${s.stopReason}`;
}
