/** Append-only JSON Lines outputs that survive interruption (batch results, experiment and eval samples). */

/**
 * The complete lines of an output written by appends. A last line without its newline is a write cut
 * short: it is cut from the file, so the record is redone. A missing file has no lines. Blank lines are
 * kept, so index + 1 is the line number for messages.
 */
export async function readCompleteLines(path: string): Promise<string[]> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  const end = bytes.lastIndexOf(0x0a) + 1; // after the last "\n"
  if (end < bytes.length) await Deno.truncate(path, end);
  const lines = new TextDecoder().decode(bytes.subarray(0, end)).split("\n");
  lines.pop(); // the empty string after the final newline
  return lines;
}

/** Appends one JSON line per record and flushes it to disk before returning. */
export class JsonlAppender<T> {
  private constructor(private readonly file: Deno.FsFile) {}

  static async open<T>(path: string): Promise<JsonlAppender<T>> {
    return new JsonlAppender<T>(await Deno.open(path, { append: true, create: true, write: true }));
  }

  write(rec: T): void {
    const bytes = new TextEncoder().encode(JSON.stringify(rec) + "\n");
    let off = 0;
    while (off < bytes.length) off += this.file.writeSync(bytes.subarray(off));
    this.file.syncDataSync();
  }

  close(): void {
    this.file.close();
  }
}
