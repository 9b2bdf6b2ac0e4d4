/**
 * Text ↔ token ids for a checkpoint, on top of @huggingface/tokenizers (tokenizer.json) and
 * @huggingface/jinja (the chat template). This file only decides the policy around them: BOS once,
 * which ids stop generation, chat rendering without a second BOS, and lossless decoding.
 */

import { Tokenizer } from "@huggingface/tokenizers";
import { basename, dirname, join } from "node:path";
import { CheckpointError, InputError } from "../errors.ts";
import { type ChatMessage, missingChatTemplate, renderChatTemplate, selectChatTemplate } from "./chat.ts";

export type { ChatMessage } from "./chat.ts";

export interface LoadOptions {
  /** BOS id from config.json / generation_config.json; when absent, tokenizer_config's bos_token. */
  bosTokenId?: number | null;
  /** EOS ids from config.json / generation_config.json; merged with tokenizer_config's. */
  eosTokenIds?: number[];
  /** Names the model in error messages (default: the folder holding tokenizer.json). */
  name?: string;
}

/** End-of-turn markers that stop generation when the chat template writes them. */
/** How one conversation is rendered through the chat template. */
export interface ChatRenderOptions {
  /** Open an assistant turn at the end (default true). */
  addGenerationPrompt?: boolean;
  /** A named template of a list (tokenizer_config's chat_template as [{name, template}]). */
  templateName?: string;
  /** Template variables for this render, over the tokenizer's `chatVariables`. */
  variables?: Record<string, unknown>;
}

const TURN_END_TOKENS = ["<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>"];

/** tokenizer_config writes special tokens as "text" or as an AddedToken dict {content: "text"}. */
function tokenString(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (typeof v === "object" && v !== null && typeof (v as { content?: unknown }).content === "string") {
    return (v as { content: string }).content;
  }
  return null;
}

async function readJson(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new CheckpointError(
        `${what} not found at ${path}`,
        "the checkpoint folder needs the tokenizer files that transformers' save_pretrained writes",
      );
    }
    throw new CheckpointError(`cannot read ${path}: ${(err as Error).message}`, "check the file permissions");
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(
      `${path} is not valid JSON (${(err as Error).message})`,
      "the file is truncated or corrupt: download it again",
    );
  }
}

/** chat_template.jinja / chat_template.json next to tokenizer.json (newer transformers write these). */
async function siblingChatTemplate(dir: string): Promise<unknown> {
  try {
    return await Deno.readTextFile(join(dir, "chat_template.jinja"));
  } catch {
    // fall through
  }
  try {
    const j = JSON.parse(await Deno.readTextFile(join(dir, "chat_template.json")));
    return (j as { chat_template?: unknown })?.chat_template ?? null;
  } catch {
    return null;
  }
}

export class TextTokenizer {
  /** Number of token ids the tokenizer knows (base vocabulary plus added tokens). */
  readonly vocabSize: number;
  /** BOS id, or null when the model has none. */
  readonly bosId: number | null;
  /** Ids that end generation: the given ones, tokenizer_config's eos_token, and the template's turn end. */
  readonly eosIds: number[];
  readonly hasChatTemplate: boolean;
  /** The model's name in error messages. */
  readonly name: string;

  readonly #tok: Tokenizer;
  readonly #addBos: boolean;
  readonly #special: Set<number>;
  readonly #chatTemplates: unknown;
  readonly #chatTemplate: string | null;
  readonly #bosToken: string;
  readonly #eosToken: string;
  readonly #extraContext: Record<string, unknown>;
  /**
   * Variables every chat-template render gets besides the messages (e.g. Qwen3's `enable_thinking`; the CLI's
   * `--thinking`). A variable left out takes the template's own default.
   */
  chatVariables: Record<string, unknown> = {};

  private constructor(
    tok: Tokenizer,
    config: Record<string, unknown>,
    chatTemplates: unknown,
    opts: LoadOptions & { name: string },
  ) {
    this.#tok = tok;
    this.name = opts.name;
    const vocab = tok.model?.vocab ?? [];
    this.vocabSize = vocab.length;
    this.#special = new Set();
    for (const [id, t] of tok.get_added_tokens_decoder()) if (t.special) this.#special.add(id);

    const inVocab = (id: number, what: string) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new CheckpointError(
          `${what} ${id} of ${this.name} is outside the tokenizer's ${this.vocabSize} ids`,
          "config.json / generation_config.json and tokenizer.json disagree: fix the token id",
        );
      }
      return id;
    };
    const idOf = (text: string | null) => (text === null ? undefined : tok.token_to_id(text));

    const bosText = tokenString(config.bos_token);
    this.bosId = typeof opts.bosTokenId === "number"
      ? inVocab(opts.bosTokenId, "bos_token_id")
      : idOf(bosText) ?? null;
    this.#addBos = config.add_bos_token !== false && this.bosId !== null;
    this.#bosToken = bosText ?? (this.bosId !== null ? vocab[this.bosId] : "");

    this.#chatTemplates = chatTemplates;
    this.#chatTemplate = selectChatTemplate(chatTemplates);
    this.hasChatTemplate = this.#chatTemplate !== null;

    const eos = new Set<number>();
    for (const id of opts.eosTokenIds ?? []) eos.add(inVocab(id, "eos_token_id"));
    const eosText = tokenString(config.eos_token);
    const eosId = idOf(eosText);
    if (eosId !== undefined) eos.add(eosId);
    for (const marker of TURN_END_TOKENS) {
      const id = idOf(marker);
      if (id !== undefined && this.#chatTemplate?.includes(marker)) eos.add(id);
    }
    this.eosIds = [...eos];
    this.#eosToken = eosText ?? (this.eosIds.length > 0 ? vocab[this.eosIds[0]] : "");

    this.#extraContext = {};
    for (const key of ["unk_token", "pad_token"]) {
      const s = tokenString(config[key]);
      if (s !== null) this.#extraContext[key] = s;
    }
  }

  /**
   * Loads tokenizer.json with the already-parsed tokenizer_config.json. The chat template comes from
   * tokenizer_config.chat_template, else chat_template.jinja / .json beside tokenizer.json.
   */
  static async load(
    tokenizerJsonPath: string,
    tokenizerConfig: Record<string, unknown>,
    opts: LoadOptions = {},
  ): Promise<TextTokenizer> {
    const name = opts.name ?? (basename(dirname(tokenizerJsonPath)) || tokenizerJsonPath);
    const json = await readJson(tokenizerJsonPath, "tokenizer.json");
    let tok: Tokenizer;
    try {
      tok = new Tokenizer(json as object, tokenizerConfig);
    } catch (err) {
      throw new CheckpointError(
        `${tokenizerJsonPath} is not a usable tokenizer: ${(err as Error).message}`,
        "the file is corrupt or from an unsupported tokenizer type: re-export it with transformers",
      );
    }
    if (!tok.model || tok.model.vocab.length === 0) {
      throw new CheckpointError(
        `${tokenizerJsonPath} has an empty vocabulary`,
        "download the tokenizer again",
      );
    }
    let templates = tokenizerConfig.chat_template;
    if (templates === undefined || templates === null) {
      templates = await siblingChatTemplate(dirname(tokenizerJsonPath));
    }
    return new TextTokenizer(tok, tokenizerConfig, templates, { ...opts, name });
  }

  /** The BOS id a raw prompt starts with (null: the model's prompts start without one). */
  get promptBos(): number | null {
    return this.#addBos ? this.bosId : null;
  }

  /** Encodes text as it is: no BOS, no special tokens added (a continuation, a piece of a prompt). */
  encodeText(text: string): number[] {
    return this.#tok.encode(text, { add_special_tokens: false }).ids;
  }

  /** Encodes a raw prompt; BOS is prepended exactly once when the model uses one. */
  encodePrompt(text: string): number[] {
    // Special tokens are added here rather than by the post-processor, so an EOS-appending
    // post-processor (add_eos_token) never ends a prompt.
    const ids = this.#tok.encode(text, { add_special_tokens: false }).ids;
    if (this.#addBos && ids[0] !== this.bosId) ids.unshift(this.bosId!);
    return ids;
  }

  /** Renders the chat template as text (for display, or --dry-run); `variables` over `chatVariables`. */
  renderChat(messages: ChatMessage[], opts: ChatRenderOptions = {}): string {
    const template = opts.templateName === undefined
      ? this.#chatTemplate
      : selectChatTemplate(this.#chatTemplates, opts.templateName);
    if (template === null) throw missingChatTemplate(this.name);
    return renderChatTemplate(template, messages, {
      bosToken: this.#bosToken,
      eosToken: this.#eosToken,
      addGenerationPrompt: opts.addGenerationPrompt ?? true,
      templateName: this.name,
      extra: { ...this.#extraContext, ...this.chatVariables, ...opts.variables },
    });
  }

  /**
   * Encodes a conversation through the chat template. The rendered text already holds BOS and the
   * turn markers, so nothing is added; special-token text maps to its single id.
   */
  encodeChat(messages: ChatMessage[], opts: ChatRenderOptions = {}): number[] {
    if (messages.length === 0) {
      throw new InputError("the conversation is empty", "give at least one message");
    }
    return this.#tok.encode(this.renderChat(messages, opts), { add_special_tokens: false }).ids;
  }

  /**
   * Ids → text. Special tokens are skipped unless `skipSpecial` is false. Tokenization-space
   * cleanup (" ." → ".") is never applied: it is lossy, breaks encode/decode round trips, and
   * cannot be streamed consistently. Ids outside the vocabulary (padded embedding rows) give no text.
   */
  decode(ids: number[], opts: { skipSpecial?: boolean } = {}): string {
    let valid = ids;
    if (ids.some((id) => !(id >= 0 && id < this.vocabSize))) {
      valid = ids.filter((id) => id >= 0 && id < this.vocabSize);
    }
    if (valid.length === 0) return "";
    return this.#tok.decode(valid, {
      skip_special_tokens: opts.skipSpecial ?? true,
      clean_up_tokenization_spaces: false,
    });
  }

  /**
   * One token as display text: special tokens as written, normal tokens with their leading space,
   * and a token that is only part of a UTF-8 character as its raw piece (e.g. "<0xF0>").
   */
  tokenText(id: number): string {
    if (!(id >= 0 && id < this.vocabSize)) return `<id ${id}>`;
    const piece = this.#tok.id_to_token(id) ?? `<id ${id}>`;
    if (this.#special.has(id)) return piece;
    // decode([id,id]) minus decode([id]) keeps the leading space sentencepiece strips from a first token.
    const one = this.decode([id], { skipSpecial: false });
    const two = this.decode([id, id], { skipSpecial: false });
    const text = two.startsWith(one) ? two.slice(one.length) : one;
    return text.includes("\uFFFD") ? piece : text;
  }

  isSpecial(id: number): boolean {
    return this.#special.has(id);
  }
}
