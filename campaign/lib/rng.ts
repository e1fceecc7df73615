/**
 * Seeds for the campaigns: one number replays a whole run, and every round or
 * input has its own seed derived from it, so one failure replays alone.
 */

/** mulberry32: small, seedable, the same sequence on every machine. @returns numbers in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A 31-bit seed for part `parts` of the run seeded `seed` (FNV-1a over the parts). */
export function deriveSeed(seed: number, ...parts: ReadonlyArray<string | number>): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (const ch of parts.join("/")) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  return h & 0x7fffffff;
}

/** A fresh run seed when none was given. */
export function freshSeed(): number {
  return Math.floor(Math.random() * 0x7fffffff);
}

/** Helpers over one generator. */
export class Rng {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = prng(seed);
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}
