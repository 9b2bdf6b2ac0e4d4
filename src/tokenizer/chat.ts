/**
 * Chat templates: the Jinja template from tokenizer_config.json rendered with @huggingface/jinja, the
 * same engine (and the same context names) transformers.js uses for `apply_chat_template`.
 * Jinja's sandbox has no file or network access; the only callables a template gets are jinja's
 * globals: range, strftime_now and raise_exception (jinja defines it, as transformers does, and
 * refuses a redefinition), whose message becomes the InputError's.
 */

import { Template } from "@huggingface/jinja";
import { InputError } from "../errors.ts";

/** One chat turn. Roles are free-form: templates decide which they accept. */
export interface ChatMessage {
  role: "system" | "user" | "assistant" | string;
  content: string;
}

export interface RenderOptions {
  /** Passed to the template as `bos_token`. */
  bosToken?: string;
  /** Passed to the template as `eos_token`. */
  eosToken?: string;
  /** Passed as `add_generation_prompt`: open an assistant turn at the end (default true). */
  addGenerationPrompt?: boolean;
  /** Names the template (usually the model) in error messages. */
  templateName?: string;
  /** More context variables (unk_token, pad_token, ...); they never override the ones above. */
  extra?: Record<string, unknown>;
}

const JINJA_GLOBALS = [
  "raise_exception",
  "range",
  "strftime_now",
  "true",
  "false",
  "none",
  "True",
  "False",
  "None",
];

const FIX = "pass --raw to skip the template, or fix tokenizer_config.json";

/** Parsed templates, keyed by source: a CLI renders the same one or two templates over and over. */
const parsed = new Map<string, Template>();

function parse(template: string, name: string): Template {
  let t = parsed.get(template);
  if (t) return t;
  try {
    t = new Template(template);
  } catch (err) {
    throw new InputError(`chat template of ${name} failed to parse: ${messageOf(err)}`, FIX);
  }
  if (parsed.size >= 8) parsed.clear();
  parsed.set(template, t);
  return t;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Renders `messages` through a Jinja chat template. Any parse or render failure is an InputError. */
export function renderChatTemplate(
  template: string,
  messages: ChatMessage[],
  opts: RenderOptions = {},
): string {
  const name = opts.templateName ?? "this model";
  const t = parse(template, name);
  const context: Record<string, unknown> = {
    ...opts.extra,
    messages: messages.map((m) => ({ role: m.role, content: m.content })),
    bos_token: opts.bosToken ?? "",
    eos_token: opts.eosToken ?? "",
    add_generation_prompt: opts.addGenerationPrompt ?? true,
  };
  // Jinja's own globals (raise_exception, range, ...) cannot be redeclared: never pass them.
  for (const g of JINJA_GLOBALS) delete context[g];
  let out: unknown;
  try {
    out = t.render(context);
  } catch (err) {
    throw new InputError(`chat template of ${name} failed: ${messageOf(err)}`, FIX);
  }
  if (typeof out !== "string") {
    throw new InputError(`chat template of ${name} failed: it rendered ${typeof out}, not text`, FIX);
  }
  return out;
}

/** The error for a model without a chat template; the caller decides whether that matters. */
export function missingChatTemplate(name: string): InputError {
  return new InputError(
    `${name} has no chat template (no chat_template in tokenizer_config.json)`,
    "pass --raw to send the prompt as plain text, or add a chat_template to tokenizer_config.json",
  );
}

/**
 * Picks the template from tokenizer_config.chat_template: a string, or a list of {name, template}
 * (named `name`, else "default", else the first). Returns null when there is none.
 */
export function selectChatTemplate(raw: unknown, name?: string): string | null {
  if (typeof raw === "string") return raw.length > 0 ? raw : null;
  if (!Array.isArray(raw)) return null;
  const entries = raw.filter((e): e is { name: string; template: string } =>
    typeof e === "object" && e !== null && typeof e.template === "string"
  );
  if (name !== undefined) {
    const hit = entries.find((e) => e.name === name);
    if (hit) return hit.template;
    throw new InputError(
      `no chat template named "${name}"`,
      `use one of: ${entries.map((e) => e.name).join(", ") || "(none)"}`,
    );
  }
  return (entries.find((e) => e.name === "default") ?? entries[0])?.template ?? null;
}
