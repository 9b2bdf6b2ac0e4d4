/** The benches' order statistics (bench/stats.ts): medians and quartiles of repeated timings. */

import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { median, quantile } from "../bench/stats.ts";

Deno.test("bench stats: median and quantiles interpolate between neighbours, in any input order", () => {
  assertEquals(median([3, 1, 2]), 2);
  assertEquals(median([4, 1, 3, 2]), 2.5);
  assertEquals(quantile([40, 10, 30, 20, 50], 0.25), 20);
  assertEquals(quantile([10, 20], 0.25), 12.5);
  assertEquals([quantile([7, 9], 0), quantile([7, 9], 1), median([5])], [7, 9, 5]);
  ok(Number.isNaN(median([])));
});
