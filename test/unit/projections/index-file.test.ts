import { describe, expect, it } from "vitest";
import { IndexCorruptedError } from "../../../src/shared/errors.js";
import { MailFlag } from "../../../src/log/types.js";
import { replay } from "../../../src/projections/apply.js";
import { decodeIndexFile, encodeIndexFile } from "../../../src/projections/index-file.js";
import { getHeader, keywordNames, lookupUid, recordAt } from "../../../src/projections/read.js";
import { emptyIndexMap, type IndexMapState } from "../../../src/projections/state.js";
import { enableModseq, HDR, LogBuilder, R } from "./log-builder.js";

function sdbox(): IndexMapState {
  const b = new LogBuilder();
  return replay(
    [
      b.tx(R.intro({ name: "dbox-hdr", hdrSize: 24 }), R.extHdr(0, new Array(24).fill(0xab))),
      b.tx(R.intro({ name: "hdr-pop3-uidl", hdrSize: 4 }), R.headerU32(HDR.uidValidity, 1234)),
      b.tx(R.intro({ name: "cache", recordSize: 4, recordAlign: 4 }), R.extReset(99)),
      b.tx(R.append([[1, MailFlag.SEEN], 2, [3, MailFlag.DELETED]]), R.intro({ extId: 2, resetId: 99, recordSize: 4, recordAlign: 4 }), R.extRec(4, [[2, [0x44, 2, 0, 0]]])),
    ],
    emptyIndexMap({ indexId: 0x65000000 }),
  );
}

function corrupt(bytes: Uint8Array): IndexCorruptedError {
  try {
    decodeIndexFile(bytes, "/x/dovecot.index");
  } catch (e) {
    if (e instanceof IndexCorruptedError) return e;
    throw e;
  }
  throw new Error("expected IndexCorruptedError");
}

const u32At = (b: Uint8Array, at: number) => new DataView(b.buffer, b.byteOffset).getUint32(at, true);
function patched(bytes: Uint8Array, at: number, value: number, width: 1 | 2 | 4 = 4): Uint8Array {
  const copy = bytes.slice();
  const v = new DataView(copy.buffer);
  if (width === 1) v.setUint8(at, value);
  else if (width === 2) v.setUint16(at, value, true);
  else v.setUint32(at, value, true);
  return copy;
}

describe("encodeIndexFile", () => {
  it("lays out the observed sdbox header: dbox-hdr @120, hdr-pop3-uidl @168, cache @208, 232 bytes, 12-byte records", () => {
    const bytes = encodeIndexFile(sdbox());
    expect([...bytes.subarray(0, 4)]).toEqual([7, 3, 120, 0]);
    expect(u32At(bytes, 4)).toBe(232);
    expect(u32At(bytes, 8)).toBe(12);
    expect(bytes[12]).toBe(1);
    expect(u32At(bytes, 16)).toBe(0x65000000);
    expect(u32At(bytes, 32)).toBe(3);
    const name = (at: number, n: number) => String.fromCharCode(...bytes.subarray(at + 16, at + 16 + n));
    expect([name(120, 8), name(168, 13), name(208, 5)]).toEqual(["dbox-hdr", "hdr-pop3-uidl", "cache"]);
    expect([...bytes.subarray(208, 224)]).toEqual([0, 0, 0, 0, 99, 0, 0, 0, 8, 0, 4, 0, 4, 0, 5, 0]);
    expect(bytes.length).toBe(232 + 3 * 12);
    // record 2: uid 2, flags 0, padding, cache offset 0x244 at 8
    expect([...bytes.subarray(244, 256)]).toEqual([2, 0, 0, 0, 0, 0, 0, 0, 0x44, 2, 0, 0]);
  });
});

describe("decodeIndexFile", () => {
  it("round-trips: decode(encode(s)) encodes to the same bytes and reads the same", () => {
    const b = new LogBuilder();
    let s = sdbox();
    s = replay([b.tx(R.keyword("add", "$Label1", [[2, 2]])), b.tx(...enableModseq(5n)), b.tx(R.flags(1, 1, MailFlag.FLAGGED, 0))], s);
    const bytes = encodeIndexFile(s);
    const d = decodeIndexFile(bytes, "p");
    expect(encodeIndexFile(d)).toEqual(bytes);
    expect(getHeader(d)).toEqual(getHeader(s));
    expect(d.extensions).toEqual(s.extensions);
    expect(keywordNames(d)).toEqual(["$Label1"]);
    expect(lookupUid(d, 2)!.keywords).toEqual(["$Label1"]);
    expect(recordAt(d, 1)!.modseq).toBe(recordAt(s, 1)!.modseq);
    expect(d.currentExt).toBeNull();
  });

  it("upgrades a minor version 2 file silently", () => {
    const bytes = patched(encodeIndexFile(sdbox()), 1, 2, 1);
    expect(getHeader(decodeIndexFile(bytes, "p")).minorVersion).toBe(3);
  });

  const cases: Array<[string, (b: Uint8Array) => Uint8Array, number, RegExp]> = [
    ["a short file", (b) => b.subarray(0, 100), 0, /shorter than the base header/],
    ["another major version", (b) => patched(b, 0, 6, 1), 0, /major version 6/],
    ["big-endian compat flags", (b) => patched(b, 12, 0, 1), 12, /CPU architecture/],
    ["the CORRUPTED flag", (b) => patched(b, 20, 1), 20, /corrupted flag/],
    ["header_size past the file", (b) => patched(b, 4, 100000), 4, /larger than file/],
    ["a base header smaller than 120", (b) => patched(b, 2, 100, 2), 2, /header sizes/],
    ["too many messages", (b) => patched(b, 32, 4), 32, /messages_count 4 too large/],
    ["an extension past header_size", (b) => patched(b, 120, 4000), 120, /goes outside header/],
    ["a duplicate extension name", (b) => {
      const c = b.slice();
      c.set([...new TextEncoder().encode("dbox-hdr"), 0, 0, 0, 0, 0], 168 + 16);
      return patched(c, 168 + 14, 8, 2);
    }, 168, /Duplicate header extension dbox-hdr/],
    ["a field outside the record", (b) => patched(b, 208 + 8, 12, 2), 208, /outside record size/],
    ["uid_validity 0 with next_uid > 1", (b) => patched(b, 24, 0), 24, /uidvalidity=0/],
    ["first_recent_uid past next_uid", (b) => patched(b, 48, 9), 48, /first_recent_uid/],
    ["uids not ascending", (b) => patched(b, 232 + 12, 1), 232 + 12, /uid 1 after 1/],
    ["a wrong seen counter", (b) => patched(b, 40, 2), 40, /seen_messages_count 2/],
  ];
  it.each(cases)("rejects %s with IndexCorruptedError naming path and offset", (_, mutate, offset, message) => {
    const err = corrupt(mutate(encodeIndexFile(sdbox())));
    expect(err.path).toBe("/x/dovecot.index");
    expect(err.offset).toBe(offset);
    expect(err.message).toMatch(message);
  });

  it("names the record and offset of a uid out of order past the first leaf of 1,024 records, and counts flags over every leaf", () => {
    const b = new LogBuilder();
    const uids = Array.from({ length: 1030 }, (_, i): [number, number] => [i + 1, i % 3 === 0 ? MailFlag.SEEN : i % 5 === 0 ? MailFlag.DELETED : 0]);
    const bytes = encodeIndexFile(replay([b.tx(R.headerU32(HDR.uidValidity, 1), R.append(uids))], emptyIndexMap()));
    const state = decodeIndexFile(bytes, "/x/dovecot.index");
    expect(getHeader(state).seenMessagesCount).toBe(uids.filter(([, f]) => f === MailFlag.SEEN).length);
    expect(getHeader(state).deletedMessagesCount).toBe(uids.filter(([, f]) => f === MailFlag.DELETED).length);
    const headerSize = u32At(bytes, 4) & 0xffff;
    const recordSize = u32At(bytes, 8) & 0xffff;
    const at = headerSize + 1025 * recordSize; // record 1026, in the second leaf
    const err = corrupt(patched(bytes, at, 5));
    expect(err.offset).toBe(at);
    expect(err.message).toMatch(/record 1026 has uid 5 after 1025/);
  });

  it("rejects a keywords header that does not end with NUL", () => {
    const b = new LogBuilder();
    const bytes = encodeIndexFile(replay([b.tx(R.headerU32(HDR.uidValidity, 1), R.append([1])), b.tx(R.keyword("add", "k", [[1, 1]]))], emptyIndexMap()));
    const kwAt = 120; // the only extension
    const hdrSize = u32At(bytes, kwAt);
    const dataAt = kwAt + 16 + 8; // "keywords" is 8 bytes → 24
    const broken = bytes.slice();
    broken[dataAt + hdrSize - 1] = 0x41;
    expect(corrupt(broken).message).toMatch(/doesn't end with NUL/);
  });
});
