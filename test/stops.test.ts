/** The stop matcher (src/generation/stops.ts): what streamed text is released, held, or dropped at a stop. */

import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { StopMatcher } from "../src/generation/stops.ts";

/** Feeds the pieces in order; returns what each push released. */
function feed(m: StopMatcher, pieces: string[]): string[] {
  return pieces.map((p) => m.push(p));
}

Deno.test("stops: without stop strings every piece is released at once", () => {
  const m = new StopMatcher();
  assertEquals(feed(m, ["Once", " upon", " a", " time"]), ["Once", " upon", " a", " time"]);
  assertEquals(m.stopped, false);
  assertEquals(m.flush(), "");
});

Deno.test("stops: the earliest of several stops ends the text, whichever is listed first", () => {
  const m = new StopMatcher(["time", "upon", "Once upon a"]);
  assertEquals(m.push("So, Once upon a time"), "So, ");
  assertEquals(m.stopped, true);

  const n = new StopMatcher(["a time", "upon"]);
  assertEquals(n.push("Say: a time upon"), "Say: ");
  assertEquals(n.stopped, true);
});

Deno.test("stops: a stop split across pieces is held, then cut where it starts", () => {
  const m = new StopMatcher(["\nUser:"]);
  assertEquals(feed(m, ["Hello", " there\n", "Us", "er: hi"]), ["Hello", " there", "", ""]);
  assertEquals(m.stopped, true);
  // Nothing comes after the stop, not even what flush would have released.
  assertEquals(m.push("more"), "");
  assertEquals(m.flush(), "");
});

Deno.test("stops: held text that turns out not to be a stop is released with what follows", () => {
  const m = new StopMatcher(["\nUser:"]);
  assertEquals(feed(m, ["Hi\n", "Use", "ful"]), ["Hi", "", "\nUseful"]);
  assertEquals(m.stopped, false);
});

Deno.test("stops: the longest tail that could start any stop is held", () => {
  const m = new StopMatcher(["abc", "bcd"]);
  // "xab" ends in "ab" (starts "abc") and "b" (starts "bcd"): the longer is held.
  assertEquals(m.push("xab"), "x");
  assertEquals(m.push("c"), "");
  assertEquals(m.stopped, true);
});

Deno.test("stops: at the end of generation the held tail is released by flush", () => {
  const m = new StopMatcher(["</s>"]);
  assertEquals(m.push("done </"), "done ");
  assertEquals(m.flush(), "</");
  assertEquals(m.flush(), "");
});

Deno.test("stops: empty stop strings are ignored", () => {
  const m = new StopMatcher(["", "END"]);
  assertEquals(feed(m, ["abc", " E"]), ["abc", " "]);
  assertEquals(m.stopped, false);
  assertEquals(m.push("ND!"), "");
  assertEquals(m.stopped, true);

  const only = new StopMatcher([""]);
  assertEquals(only.push("text"), "text");
  assertEquals(only.stopped, false);
});
