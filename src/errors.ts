/**
 * Typed errors. Every error a user can cause carries the fix in its message, and the CLI prints
 * `error: <message>` on one line and exits non-zero — never a stack dump.
 */

/** Base class: `hint` is the fix, appended to the message. */
export class FlexiError extends Error {
  /** Process exit code the CLI uses for this error. */
  readonly exitCode: number = 1;
  constructor(message: string, readonly hint?: string) {
    super(hint ? `${message} — ${hint}` : message);
    this.name = new.target.name;
  }
}

/** A bad command line: unknown flag or bad value (exit 2). */
export class UsageError extends FlexiError {
  override readonly exitCode = 2;
}

/** A checkpoint folder or file that is missing, truncated, corrupt or unsupported. */
export class CheckpointError extends FlexiError {}

/** No usable GPU adapter, a device fault, or a model that does not fit. */
export class GpuError extends FlexiError {}

/** A prompt or template problem: too long for the context, template that throws. */
export class InputError extends FlexiError {}

/** Turns anything thrown into the one line the CLI prints. */
export function describeError(err: unknown): { line: string; exitCode: number } {
  if (err instanceof FlexiError) return { line: `error: ${err.message}`, exitCode: err.exitCode };
  if (err instanceof Error) return { line: `error: ${err.message}`, exitCode: 1 };
  return { line: `error: ${String(err)}`, exitCode: 1 };
}
