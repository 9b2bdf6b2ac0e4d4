/**
 * Chat templates: the Jinja template from tokenizer_config.json rendered with @huggingface/jinja, the
 * same engine (and the same context names) transformers.js uses for `apply_chat_template`.
 * Jinja's sandbox has no file or network access; the only callables a template gets are jinja's
 * globals: range, strftime_now and raise_exception (jinja defines it, as transformers does, and
 * refuses a redefinition), whose message becomes the InputError's.
 * A template is code from a downloaded file and jinja itself sets no limits (`range(10**8)` exhausts the
 * heap, nested loops run for hours), so a render is bounded: see TEMPLATE_LIMITS.
 */

import { Environment, Interpreter, Template } from "@huggingface/jinja";
import { InputError } from "../errors.ts";

/**
 * What one render may use. Real templates need a few thousand steps for a long chat and output what
 * the conversation holds; these are orders of magnitude above that.
 */
export const TEMPLATE_LIMITS = {
  /** Evaluation steps: expressions, statements, loop iterations, and one per element range() makes. */
  steps: 2_000_000,
  /** Wall-clock time (ms). */
  ms: 5_000,
  /** Elements of one range() or any list the template builds. */
  items: 100_000,
  /** Characters of any string the template builds, its output included. */
  chars: 16 * 2 ** 20,
};

/** The render in progress, which the hooks below count against (null: not one of ours, no limits). */
let budget: { steps: number; deadline: number; limits: typeof TEMPLATE_LIMITS } | null = null;

class TemplateLimit extends Error {}

type RuntimeValue = ReturnType<Interpreter["evaluate"]>;

function tick(b: NonNullable<typeof budget>, steps = 1): void {
  b.steps += steps;
  if (b.steps > b.limits.steps) {
    throw new TemplateLimit(`it ran more than ${b.limits.steps} steps (an endless or huge loop?)`);
  }
  if ((b.steps & 15) === 0 && performance.now() > b.deadline) {
    throw new TemplateLimit(`it ran longer than ${b.limits.ms / 1000} s`);
  }
}

/** jinja's range(), refusing what Python's would (non-integers) and lengths over the limit. */
function guardedRange(b: NonNullable<typeof budget>, range: RuntimeValue): RuntimeValue {
  const fn = range.value as (args: RuntimeValue[], env: unknown) => RuntimeValue;
  const Ctor = range.constructor as new (v: unknown) => RuntimeValue;
  return new Ctor((args: RuntimeValue[], env: unknown) => {
    const n = args.map((a) => a?.value);
    if (n.some((x) => typeof x === "number" && !Number.isSafeInteger(x))) {
      throw new TemplateLimit(`range() takes integers, got ${n.join(", ")}`);
    }
    if (n.every((x) => typeof x === "number")) {
      const [start, stop, step] = n.length === 1 ? [0, n[0], 1] : [n[0], n[1], n[2] ?? 1];
      const length = step === 0 ? 0 : Math.max(0, Math.ceil((stop - start) / step));
      if (length > b.limits.items) {
        throw new TemplateLimit(`range() of ${length} elements is over the limit of ${b.limits.items}`);
      }
      tick(b, length);
    }
    return fn(args, env);
  });
}

// jinja exports its Interpreter and Environment, and Template.render runs `new Interpreter(env)`: hooks
// on evaluate() (every expression and statement) and setVariable() (every loop iteration) see all of it.
const evaluate = Interpreter.prototype.evaluate;
Interpreter.prototype.evaluate = function (statement, environment) {
  const b = budget;
  if (!b) return evaluate.call(this, statement, environment);
  tick(b);
  const out = evaluate.call(this, statement, environment);
  if (out?.type === "FunctionValue" && (statement as { value?: unknown } | undefined)?.value === "range") {
    return statement?.type === "Identifier" ? guardedRange(b, out) : out;
  }
  if (out?.type === "StringValue" && (out.value as string).length > b.limits.chars) {
    throw new TemplateLimit(`it built a text of ${(out.value as string).length} characters`);
  }
  if (out?.type === "ArrayValue" && (out.value as unknown[]).length > b.limits.items) {
    throw new TemplateLimit(`it built a list of ${(out.value as unknown[]).length} elements`);
  }
  return out;
};
const setVariable = Environment.prototype.setVariable;
Environment.prototype.setVariable = function (name, value) {
  if (budget) tick(budget);
  return setVariable.call(this, name, value);
};

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
  const outer = budget;
  budget = { steps: 0, deadline: performance.now() + TEMPLATE_LIMITS.ms, limits: TEMPLATE_LIMITS };
  try {
    out = t.render(context);
  } catch (err) {
    if (err instanceof TemplateLimit) {
      throw new InputError(
        `chat template of ${name} was stopped: ${err.message}`,
        "the template is broken or hostile; pass --raw to skip it, or fix tokenizer_config.json",
      );
    }
    throw new InputError(`chat template of ${name} failed: ${messageOf(err)}`, FIX);
  } finally {
    budget = outer;
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
