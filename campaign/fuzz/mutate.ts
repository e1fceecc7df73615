/**
 * Byte edits for fuzzing (shared with test/property/decoders-fuzz.test.ts,
 * which draws them with fast-check): overwrite a byte or a little-endian u32
 * with a boundary-ish value, cut, insert.
 */
import type { Rng } from "../lib/rng.js";

/** Byte values an overwrite uses: NUL, 1, LF, space, DEL, 8-bit, 0xff, 'F' (as in "From "). */
export const BYTE_VALUES: readonly number[] = [0, 1, 0x0a, 0x20, 0x7f, 0x80, 0xff, 0x46];
/** u32 values an overwrite uses: sizes and counts at and beyond their limits. */
export const U32_VALUES: readonly number[] = [0, 1, 0x7fffffff, 0xffffffff, 0x10000, 40];

export type Mutation =
  | { kind: "set"; at: number; value: number }
  | { kind: "u32"; at: number; value: number }
  | { kind: "cut"; at: number }
  | { kind: "insert"; at: number; bytes: Uint8Array };

/** Applies `edits` in order (positions modulo the current length). @returns new bytes; `original` is untouched. */
export function mutate(original: Uint8Array, edits: readonly Mutation[]): Uint8Array {
  let bytes = Buffer.from(original);
  for (const e of edits) {
    if (bytes.length === 0) break;
    const at = e.at % bytes.length;
    if (e.kind === "set") bytes[at] = e.value;
    else if (e.kind === "u32") {
      if (at + 4 <= bytes.length) bytes.writeUInt32LE(e.value, at);
    } else if (e.kind === "cut") bytes = bytes.subarray(0, at);
    else bytes = Buffer.concat([bytes.subarray(0, at), e.bytes, bytes.subarray(at)]);
  }
  return bytes;
}

/**
 * 1 to 6 random edits. Positions fall anywhere, but half of them within the
 * first 256 bytes, where the headers that say how to read the rest are.
 */
export function randomMutations(rng: Rng, length: number): Mutation[] {
  const at = () => (rng.chance(0.5) ? rng.int(Math.min(256, Math.max(1, length))) : rng.int(Math.max(1, length)));
  return Array.from({ length: 1 + rng.int(6) }, (): Mutation => {
    switch (rng.int(4)) {
      case 0: return { kind: "set", at: at(), value: rng.pick(BYTE_VALUES) };
      case 1: return { kind: "u32", at: at(), value: rng.pick(U32_VALUES) };
      case 2: return { kind: "cut", at: at() };
      default: return { kind: "insert", at: at(), bytes: Uint8Array.from({ length: rng.int(17) }, () => rng.int(256)) };
    }
  });
}
