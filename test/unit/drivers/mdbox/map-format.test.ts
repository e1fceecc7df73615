import { describe, expect, it } from "vitest";
import {
  decodeMapHeader, decodeMapRecord, decodeRefcount, encodeMapHeader, encodeMapRecord, highestFileIdRecords,
  initialMapRecords, mapRecordRecords, refIncRecords, refSetRecords,
} from "../../../../src/projections/mdbox-map-format.js";
import {
  decodeMdboxHeader, decodeMdboxRecord, encodeMdboxHeader, encodeMdboxRecord, initialMailboxRecords,
} from "../../../../src/drivers/mdbox/mailbox-format.js";
import { encodeTransaction } from "../../../../src/log/encode-file.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
/** A record's type field and payload, hex (the size field uses Dovecot's 7-bit encoding, checked by the codec's tests). */
const typeAndPayload = (r: Parameters<typeof encodeTransaction>[0][number]) => hex(encodeTransaction([r]).subarray(4));

describe("map extension layouts", () => {
  it("encode a map record as doveadm dumps it (file_id 1, offset 16, size 0x76)", () => {
    expect(hex(encodeMapRecord({ fileId: 1, offset: 16, size: 0x76 }))).toBe("010000001000000076000000");
    expect(decodeMapRecord(Uint8Array.from(Buffer.from("020000001000000076000000", "hex")))).toEqual({ fileId: 2, offset: 16, size: 0x76 });
    expect(decodeMapRecord(new Uint8Array(12))).toBeUndefined();
  });

  it("map header: highest_file_id then rebuild_count; short data reads as zeros", () => {
    expect(hex(encodeMapHeader({ highestFileId: 2, rebuildCount: 1 }))).toBe("0200000001000000");
    expect(decodeMapHeader(Uint8Array.of(5, 0, 0, 0))).toEqual({ highestFileId: 5, rebuildCount: 0 });
    expect(decodeRefcount(Uint8Array.of(0xff, 0x7f))).toBe(32767);
  });

  it("records match what doveadm writes, byte for byte", () => {
    // doveadm's first save into a new map (dbox.md §4.2, observed): ext-intro map, ext-hdr highest_file_id=1.
    const [intro, hdr] = highestFileIdRecords(1, { external: false });
    expect(typeAndPayload(intro)).toBe("40000000" + "ffffffff" + "00000000" + "08000000" + "0c00" + "0400" + "0100" + "0300" + "6d617000");
    expect(typeAndPayload(hdr)).toBe("00010000" + "0000" + "0400" + "01000000");
    const [, rec] = mapRecordRecords([{ mapUid: 1, fileId: 1, offset: 16, size: 0x76 }], { external: false });
    expect(typeAndPayload(rec)).toBe("00020000" + "01000000" + "010000001000000076000000");
    const [, ref] = refSetRecords([{ mapUid: 1, refcount: 1 }], { external: false });
    expect(typeAndPayload(ref)).toBe("00020000" + "01000000" + "01000000");
    const [, inc] = refIncRecords([{ mapUid: 1, diff: -1 }], { external: false });
    expect(typeAndPayload(inc)).toBe("00100000" + "01000000" + "ffffffff");
    expect(refIncRecords([{ mapUid: 1, diff: 0 }], { external: false })).toEqual([]);
  });

  it("a new map starts with uid_validity and log2_rotate_time, like doveadm's", () => {
    // The first record of a map log doveadm created (xxd at offset 40), size 24 in the 7-bit encoding.
    expect(hex(encodeTransaction(initialMapRecords(0x6b040f4d)))).toBe("80808086" + "20000010" + "18000400" + "4d0f046b" + "4c000400" + "ffffffff");
  });
});

describe("mailbox extension layouts", () => {
  it("mdbox-hdr and the new-mailbox records as doveadm `mailbox create` writes them", () => {
    const guid = Uint8Array.from(Buffer.from("011fc11d4d0f046b647d000083ecc375", "hex"));
    const h = { mapUidValidity: 0x6b040f4d, mailboxGuid: guid, flags: 0 };
    expect(hex(encodeMdboxHeader(h))).toBe("4d0f046b011fc11d4d0f046b647d000083ecc37500000000");
    expect(decodeMdboxHeader(encodeMdboxHeader(h))).toEqual(h);
    expect(decodeMdboxHeader(Uint8Array.of(1, 2))).toBeUndefined();
    const [intro, hdr, validity] = initialMailboxRecords(h, 0x6b040f4d);
    // ext-intro (ext) mdbox-hdr: hdr_size 24, record_size 0, align 0, flags 0.
    expect(typeAndPayload(intro)).toBe("40000010" + "ffffffff" + "00000000" + "18000000" + "0000" + "0000" + "0000" + "0900" + Buffer.from("mdbox-hdr").toString("hex") + "000000");
    expect(hdr.type).toBe("ext-hdr");
    expect(validity).toMatchObject({ type: "header-update", external: true });
  });

  it("mdbox record: map_uid then save_date; map_uid 0 means none", () => {
    expect(hex(encodeMdboxRecord({ mapUid: 1, saveDate: 0x6b040f58 }))).toBe("01000000580f046b");
    expect(decodeMdboxRecord(Uint8Array.from(Buffer.from("02000000580f046b", "hex")))).toEqual({ mapUid: 2, saveDate: 0x6b040f58 });
    expect(decodeMdboxRecord(new Uint8Array(8))).toBeUndefined();
    expect(decodeMdboxRecord(undefined)).toBeUndefined();
  });
});
