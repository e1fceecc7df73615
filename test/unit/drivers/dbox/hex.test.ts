import { expect, it } from "vitest";
import { parseHexBytes, parseHexString } from "../../../../src/drivers/dbox/hex.js";
import { AssertionFailure } from "../../../../src/shared/errors.js";

const bytes = new TextEncoder().encode("x00000000000001A2y");

it("parseHexBytes reads either case, and says undefined for an empty range or a non-hex byte", () => {
  expect(parseHexBytes(bytes, 1, 17)).toBe(0x1a2);
  expect(parseHexBytes(bytes, 1, 17)).toBe(parseHexString("00000000000001a2"));
  expect(parseHexBytes(bytes, 5, 5)).toBeUndefined();
  expect(parseHexBytes(bytes, 1, 18)).toBeUndefined();
});

it("parseHexBytes asserts the range ends within the bytes, where an unchecked byte would read as NaN", () => {
  expect(() => parseHexBytes(bytes, 10, bytes.length + 1)).toThrow(AssertionFailure);
  // The message is built only on failure (a rebuild parses three numbers a message), and still says where.
  expect(() => parseHexBytes(bytes, 10, bytes.length + 1)).toThrow(`hex digits [10, ${bytes.length + 1}) past the end (${bytes.length})`);
});
