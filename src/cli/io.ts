/** Small terminal helpers shared by the interactive commands. */

const encoder = new TextEncoder();

/** Writes all of `s` synchronously (tokens appear as they come, in order with stderr). */
export function writeAll(out: { writeSync(p: Uint8Array): number }, s: string): void {
  const bytes = encoder.encode(s);
  let off = 0;
  while (off < bytes.length) off += out.writeSync(bytes.subarray(off));
}

/** Lines of a byte stream (UTF-8; "\n" or "\r\n"); a last line without a newline is yielded too. */
export async function* readLines(readable: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buf = "";
  for await (const chunk of readable.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, i).replace(/\r$/, "");
      buf = buf.slice(i + 1);
    }
  }
  if (buf) yield buf.replace(/\r$/, "");
}
