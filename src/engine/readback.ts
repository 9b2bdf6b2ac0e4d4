/**
 * Step results come back through a ring of small mappable buffers, one per step in flight: Deno's readback
 * costs ≥ 11 ms on any GPU, but readbacks that overlap resolve together, so several steps stay in flight.
 */

/** What a step returns per output row. */
export interface StepResult {
  id: number;
  layers: number;
  /** Route words (bit l = routed layer l ran); empty for a plain model. */
  routes: number[];
}

/** A scored token: log P(target | before) and whether it was the greedy choice. */
export interface ScoredToken {
  logprob: number;
  greedy: boolean;
}

/** What a step reads back: one result (or score) per output, and every row's route words when asked. */
export interface StepReadback {
  results: StepResult[];
  /** A scoring step's scores (null for other steps, whose `results` hold the sampled tokens). */
  scores: ScoredToken[] | null;
  /** [rows × routeWords] when the step was submitted with rowRoutes (routed models only). */
  routesOfRows: Uint32Array | null;
}

/** How the result slots are laid out (`resultStride` words per output). */
export interface ResultLayout {
  resultWords: number;
  routeWords: number;
  /** Routed models write their layer counts and routes; a plain model's count is its depth. */
  routed: boolean;
  numLayers: number;
}

export class ReadbackRing {
  private readonly slots: GPUBuffer[] = [];
  private readonly busy: boolean[] = [];
  private next = 0;

  constructor(private readonly device: GPUDevice, private readonly slotBytes: number) {}

  /** Makes the ring hold at least `count` slots, so that keeping that many steps in flight allocates nothing. */
  reserve(count: number): void {
    while (this.slots.length < count) this.add();
  }

  /**
   * Copies `bytes` of each source into a free slot (growing the ring when every slot is in flight) and
   * returns the words once the GPU has written them; the slot is free again then.
   */
  read(
    enc: GPUCommandEncoder,
    sources: Array<{ buffer: GPUBuffer; bytes: number }>,
  ): () => Promise<Uint32Array> {
    const index = this.take();
    const slot = this.slots[index];
    let offset = 0;
    for (const s of sources) {
      if (s.bytes) enc.copyBufferToBuffer(s.buffer, 0, slot, offset, s.bytes);
      offset += s.bytes;
    }
    const total = offset;
    return async () => {
      await slot.mapAsync(GPUMapMode.READ, 0, total);
      const data = new Uint32Array(slot.getMappedRange(0, total).slice(0));
      slot.unmap();
      this.busy[index] = false;
      return data;
    };
  }

  private add(): number {
    this.slots.push(this.device.createBuffer({
      label: `readback.${this.slots.length}`,
      size: Math.max(16, this.slotBytes),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    }));
    this.busy.push(false);
    return this.slots.length - 1;
  }

  /** A free slot, searched from after the last one taken. */
  private take(): number {
    let index = -1;
    for (let i = 0; i < this.slots.length && index < 0; i++) {
      const j = (this.next + i) % this.slots.length;
      if (!this.busy[j]) index = j;
    }
    if (index < 0) index = this.add();
    this.next = (index + 1) % this.slots.length;
    this.busy[index] = true;
    return index;
  }
}

/**
 * A step's readback words → its results (the first `nOut` slots) or a scoring step's scores (two words each),
 * and the rows' route words after them.
 */
export function decodeReadback(
  data: Uint32Array,
  nOut: number,
  layout: ResultLayout,
  scoring = false,
): StepReadback {
  if (scoring) {
    const f = new Float32Array(data.buffer, data.byteOffset, 2 * nOut);
    const scores = Array.from(
      { length: nOut },
      (_, j) => ({ logprob: f[2 * j], greedy: data[2 * j + 1] === 1 }),
    );
    return { results: [], scores, routesOfRows: data.length > 2 * nOut ? data.slice(2 * nOut) : null };
  }
  const { resultWords: words, routeWords: rw, routed, numLayers } = layout;
  const results: StepResult[] = [];
  for (let j = 0; j < nOut; j++) {
    const w = data.subarray(j * words, (j + 1) * words);
    results.push({
      id: w[0],
      layers: routed ? w[1] : numLayers,
      routes: routed ? Array.from(w.subarray(2, 2 + rw)) : [],
    });
  }
  const rest = nOut * words;
  return { results, scores: null, routesOfRows: data.length > rest ? data.slice(rest) : null };
}
