import * as os from "node:os";
import { describe, expect, it } from "vitest";
import {
  generateGuid128,
  generateMessageGuid,
  guid128FromString,
  guid128StringUnlessEmpty,
  guid128ToString,
  guidHostHash,
  messageGuid128,
} from "../../../../src/drivers/dbox/guid.js";
import { InvalidArgumentError } from "../../../../src/shared/errors.js";

describe("message GUIDs", () => {
  it("are 32 lowercase hex digits and unique even when generated in a burst", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20000; i++) seen.add(generateMessageGuid());
    expect(seen.size).toBe(20000);
    for (const g of [...seen].slice(0, 100)) expect(g).toMatch(/^[0-9a-f]{32}$/);
  });

  it("follow Dovecot's layout: nsecs, secs, pid (u32 LE), host hash", () => {
    const before = Math.floor(Date.now() / 1000);
    const g = generateGuid128();
    const view = new DataView(g.buffer);
    expect(view.getUint32(0, true)).toBeLessThan(1_000_000_000 + 20000);
    expect(view.getUint32(4, true)).toBeGreaterThanOrEqual(before);
    expect(view.getUint32(4, true)).toBeLessThanOrEqual(before + 2);
    expect(view.getUint32(8, true)).toBe(process.pid);
    expect(Buffer.from(g.subarray(12)).equals(Buffer.from(guidHostHash(os.hostname())))).toBe(true);
  });

  it("host hash is the last 4 bytes of SHA-1 (observed: host 'vm' → 83ecc375)", () => {
    expect(Buffer.from(guidHostHash("vm")).toString("hex")).toBe("83ecc375");
  });

  it("converts between string and 128-bit forms", () => {
    const s = "7d94eb257709046b7d35000083ecc375";
    expect(guid128ToString(guid128FromString(s)!)).toBe(s);
    expect(guid128ToString(guid128FromString(s.toUpperCase())!)).toBe(s);
    expect(guid128FromString("xyz")).toBeUndefined();
    expect(guid128FromString(s + "0")).toBeUndefined();
    expect(() => guid128ToString(new Uint8Array(15))).toThrow(InvalidArgumentError);
  });

  it("guid128StringUnlessEmpty: hex in stored byte order, undefined for an all-zero (unassigned) GUID", () => {
    const bytes = guid128FromString("7d94eb257709046b7d35000083ecc375")!;
    expect(guid128StringUnlessEmpty(bytes)).toBe("7d94eb257709046b7d35000083ecc375");
    expect(guid128StringUnlessEmpty(new Uint8Array(16))).toBeUndefined();
    expect(() => guid128StringUnlessEmpty(new Uint8Array(15).fill(1))).toThrow(InvalidArgumentError);
  });

  it("messageGuid128 hashes GUIDs that are not 32 hex digits (last 16 bytes of SHA-1)", () => {
    expect(guid128ToString(messageGuid128("7d94eb257709046b7d35000083ecc375"))).toBe("7d94eb257709046b7d35000083ecc375");
    // SHA-1("hello") = aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d
    expect(guid128ToString(messageGuid128("hello"))).toBe("dcc5e8a2dabede0f3b482cd9aea9434d");
  });
});
