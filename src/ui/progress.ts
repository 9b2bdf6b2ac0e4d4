import { formatBytes } from "../util/format.ts";

/** A one-line progress bar on stderr. Redraws in place on a TTY; silent otherwise (logs stay clean). */

const encoder = new TextEncoder();

export class ProgressBar {
  private done = 0;
  private lastDraw = 0;
  private readonly tty: boolean;
  private readonly start = performance.now();

  constructor(readonly label: string, readonly total: number, readonly unit: "bytes" | "items" = "items") {
    this.tty = Deno.stderr.isTerminal() && !Deno.env.get("FLEXIDEPTH_NO_PROGRESS");
  }

  advance(n: number): void {
    this.update(this.done + n);
  }

  /** Sets how much is done (redrawn at most every 80 ms, and at the end). */
  update(done: number): void {
    this.done = Math.min(this.total, done);
    const now = performance.now();
    if (now - this.lastDraw > 80 || this.done === this.total) {
      this.lastDraw = now;
      this.draw();
    }
  }

  finish(): void {
    if (!this.tty) return;
    this.done = this.total;
    this.draw();
    Deno.stderr.writeSync(encoder.encode("\n"));
  }

  private fmt(n: number): string {
    return this.unit === "items" ? String(n) : formatBytes(n);
  }

  private draw(): void {
    if (!this.tty) return;
    const frac = this.total ? this.done / this.total : 1;
    const width = 28;
    const fill = Math.round(frac * width);
    const secs = (performance.now() - this.start) / 1000;
    const line = `\r${this.label} [${"█".repeat(fill)}${"░".repeat(width - fill)}] ` +
      `${(frac * 100).toFixed(0).padStart(3)}% ${this.fmt(this.done)}/${this.fmt(this.total)} ${
        secs.toFixed(1)
      }s`;
    Deno.stderr.writeSync(encoder.encode(line + "\x1b[K"));
  }
}
