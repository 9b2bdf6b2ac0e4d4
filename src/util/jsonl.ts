/** Append-only JSON Lines outputs that survive interruption (batch results, experiment samples). */

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
