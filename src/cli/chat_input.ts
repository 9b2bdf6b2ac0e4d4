/**
 * What `flexidepth chat` reads: the lines of stdin, raced against Ctrl-C. Ctrl-C while an answer is
 * written stops that answer; at the prompt it interrupts the wait for a line, and the second one in a
 * row (with no line between) asks to leave.
 */

import { readLines } from "./io.ts";

export type ChatRead =
  | { kind: "line"; text: string }
  /** Ctrl-C at the prompt; `leave` on the second in a row */
  | { kind: "interrupt"; leave: boolean }
  /** stdin ended (Ctrl-D) */
  | { kind: "end" };

export class ChatInput {
  readonly #lines = readLines(Deno.stdin.readable);
  /** The line being read: it stays pending across a Ctrl-C at the prompt. */
  #pending: Promise<IteratorResult<string>> | null = null;
  #answering: AbortController | null = null;
  /** Ctrl-Cs at the prompt since the last line. */
  #sigints = 0;
  /** A Ctrl-C came while nothing waited for one (e.g. during a /save): the next read reports it. */
  #unseen = false;
  #wake: (() => void) | null = null;
  readonly #onSigint = () => {
    if (this.#answering) {
      this.#answering.abort();
      return;
    }
    this.#sigints++;
    this.#unseen = true;
    this.#wake?.();
  };

  /** Starts listening for Ctrl-C; `close` stops. */
  constructor() {
    Deno.addSignalListener("SIGINT", this.#onSigint);
  }

  close(): void {
    Deno.removeSignalListener("SIGINT", this.#onSigint);
  }

  /** The next line of stdin, unless Ctrl-C comes first. */
  async read(): Promise<ChatRead> {
    const interrupted = new Promise<"sigint">((res) => this.#wake = () => res("sigint"));
    this.#pending ??= this.#lines.next();
    const next = this.#unseen ? "sigint" : await Promise.race([this.#pending, interrupted]);
    this.#wake = null;
    this.#unseen = false;
    if (next === "sigint") return { kind: "interrupt", leave: this.#sigints >= 2 };
    this.#pending = null;
    if (next.done) return { kind: "end" };
    this.#sigints = 0;
    return { kind: "line", text: next.value };
  }

  /** A signal that Ctrl-C aborts until `endAnswer`, instead of counting toward leaving. */
  startAnswer(): AbortSignal {
    this.#answering = new AbortController();
    return this.#answering.signal;
  }

  endAnswer(): void {
    this.#answering = null;
  }
}
