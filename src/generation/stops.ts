/**
 * Stop strings on streamed text: text is released as it arrives, except a tail that could still become a
 * stop string, which is held until the next text shows whether it does. Nothing already released can be
 * part of a stop (it would have been held), so only the held tail and the new text are searched.
 */
export class StopMatcher {
  private readonly stops: string[];
  /** Received, not yet released: a tail that starts a stop string. */
  private held = "";
  private found = false;

  /** Empty stop strings are ignored (they would stop before any text). */
  constructor(stops: readonly string[] = []) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  /** A stop string was found; the text from it on is dropped. */
  get stopped(): boolean {
    return this.found;
  }

  /** Takes the next piece of text; returns what can be released now (up to the stop, once one is found). */
  push(text: string): string {
    if (this.found) return "";
    const pending = this.held + text;
    const hit = findStop(pending, this.stops);
    if (hit >= 0) {
      this.found = true;
      this.held = "";
      return pending.slice(0, hit);
    }
    const release = pending.slice(0, pending.length - heldForStop(pending, this.stops));
    this.held = pending.slice(release.length);
    return release;
  }

  /** Releases the held tail (generation ended for another reason: it will not become a stop). */
  flush(): string {
    const rest = this.held;
    this.held = "";
    return rest;
  }
}

/** Index of the earliest stop string in `text`, or -1. */
function findStop(text: string, stops: string[]): number {
  let best = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}

/** Length of the longest suffix of `text` that is a proper prefix of a stop string (held back). */
function heldForStop(text: string, stops: string[]): number {
  let hold = 0;
  for (const s of stops) {
    for (let n = Math.min(s.length - 1, text.length); n > hold; n--) {
      if (text.endsWith(s.slice(0, n))) {
        hold = n;
        break;
      }
    }
  }
  return hold;
}
