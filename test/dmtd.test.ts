/**
 * DMTD's cycle schedule (../shared/design/dmtd-spec.md): its golden traces (heads and refill blocks), cycles
 * anchored at the first generated token, a thinking cache without holes, the bench's head-step and refill
 * costs recovered from decode times on the schedule. Kernels, steps, generation and the CLI:
 * test/dmtd_*.test.ts.
 */

import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { assertClose } from "./harness.ts";
import { CycleSchedule } from "../src/generation/dmtd.ts";
import { betweenHeadsMs, headStepCosts, pairedOverIdeal } from "../bench/dmtd.ts";

/** The schedule's steps from the first generated token on: [position, head, refill block]. */
function trace(P: number, cycle: number, steps: number): Array<[number, boolean, number[]]> {
  const s = new CycleSchedule(cycle, P, P);
  return Array.from({ length: steps }, (_, j) => {
    const step = s.at(P + j);
    return [step.pos, step.head, step.refill];
  });
}

Deno.test("dmtd schedule: prompt 6, τ = 4 → heads at 6, 10, 14 with blocks [6], [7..10], [11..14]", () => {
  const heads = trace(6, 4, 12).filter(([, head]) => head);
  assertEquals(heads, [[6, true, [6]], [10, true, [7, 8, 9, 10]], [14, true, [11, 12, 13, 14]]]);
});

Deno.test("dmtd schedule: cycles anchored at the first generated token, whatever the prompt length", () => {
  // P = 5 is no multiple of τ = 4: heads at 5, 9, 13, not at 8, 12.
  assertEquals(trace(5, 4, 9).filter(([, h]) => h).map(([p]) => p), [5, 9, 13]);
  assertEquals(trace(1, 3, 7).filter(([, h]) => h).map(([p]) => p), [1, 4, 7]);
});

Deno.test("dmtd schedule: the thinking cache has no hole and no position written twice (τ = 1, 2, 3, 4, 6)", () => {
  for (const cycle of [1, 2, 3, 4, 6]) {
    for (const P of [1, 5, 6, 12]) {
      const steps = trace(P, cycle, 3 * cycle + 2);
      const written = [...Array(P).keys()]; // the prompt's, by prefill
      for (const [pos, head, refill] of steps) {
        ok(head === ((pos - P) % cycle === 0), `τ ${cycle} P ${P}: head at ${pos}`);
        if (head) ok(refill.at(-1) === pos, "a block ends at its head");
        else assertEquals(refill, [], "a non-head step runs no thinking layer");
        written.push(...refill);
      }
      const lastHead = steps.filter(([, h]) => h).at(-1)![0];
      assertEquals(written, [...Array(lastHead + 1).keys()], `τ ${cycle} P ${P}: [0, last head] once each`);
    }
  }
});

Deno.test("dmtd bench: a head step and its refill's cost come back from decode times on the real schedule", () => {
  // Steps cost F (full depth, and the first head: its block is its own row), N between heads, H a head over τ
  // rows; decode times are their means over the schedule's steps, as `decodeTokensPerSec` measures them.
  const F = 30, N = 13, P = 5, TIGHT = { atol: 1e-9, rtol: 1e-9 };
  for (const [cycle, H] of [[2, 35], [3, 45], [4, 52.7], [6, 70]]) {
    for (const steps of [31, 64, 127]) {
      const mean = (c: number, head: number) => {
        const s = new CycleSchedule(c, P, P);
        let total = 0;
        for (let j = 0; j < steps; j++) {
          const step = s.at(P + j);
          total += !step.head ? N : step.refill.length === 1 ? F : head;
        }
        return total / steps;
      };
      const between = betweenHeadsMs(steps, F, mean(steps + 1, 0));
      const got = headStepCosts(steps, F, between, cycle, mean(cycle, H));
      const label = `τ ${cycle}, ${steps} steps`;
      assertClose(new Float64Array([between, got.headMs]), new Float64Array([N, H]), TIGHT, label);
      assertClose(
        new Float64Array([got.refillOverOneRow]),
        new Float64Array([(H - N) / (F - N)]),
        TIGHT,
        label,
      );
    }
  }
  // Too short a decode to tell: no second head, or one step.
  ok(Number.isNaN(headStepCosts(5, F, N, 6, 20).headMs) && Number.isNaN(betweenHeadsMs(1, F, 20)));
});

Deno.test("dmtd bench: measured ÷ ideal paired run by run is the median of the rounds' ratios", () => {
  // A slow spell in round 2 slows full depth only: each mode's best run would say 30 / 20 / 2 = 0.75.
  const TOL = { atol: 1e-12, rtol: 1e-12 };
  const close = (got: number, want: number) =>
    assertClose(new Float64Array([got]), new Float64Array([want]), TOL);
  close(pairedOverIdeal([30, 40, 32], [20, 20, 20], 2), 32 / 20 / 2);
  // An even number of rounds: the mean of the middle two ratios (1.5 and 1.6).
  close(pairedOverIdeal([30, 48, 32, 29], [20, 20, 20, 20], 1), (1.5 + 1.6) / 2);
  // Paired, not sorted apart: the same times in another order give another figure.
  close(pairedOverIdeal([30, 40, 32], [20, 25, 16], 1), 1.6);
  close(pairedOverIdeal([30, 40, 32], [25, 20, 16], 1), 2.0);
  ok(Number.isNaN(pairedOverIdeal([], [], 2)));
});
