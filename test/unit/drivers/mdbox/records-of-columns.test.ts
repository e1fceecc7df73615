import { describe, expect, it } from "vitest";
import { appendRecords, appendRecordsOfColumns } from "../../../../src/drivers/mdbox/mailbox-writer.js";
import { encodeTransaction } from "../../../../src/log/encode-file.js";
import { mapRecordRecords, mapRecordRecordsOfColumns, refSetRecords, refSetRecordsOfColumns } from "../../../../src/projections/mdbox-map-format.js";

// The column builders a rebuild uses write the same bytes as the per-item builders they stand for.
const n = 37;
const mapUids = Uint32Array.from({ length: n }, (_, i) => 1000 + 3 * i);
const guids = Uint8Array.from({ length: n * 16 }, (_, i) => (i * 131 + 7) & 0xff);
const fileIds = Uint32Array.from({ length: n }, (_, i) => 1 + (i % 4));
const offsets = Float64Array.from({ length: n }, (_, i) => 0xfffff000 + i * 2300);
const sizes = Float64Array.from({ length: n }, (_, i) => 2000 + i);
const refcounts = Uint32Array.from({ length: n }, (_, i) => (i * 977) % 32768);
const indexes = [0, 5, 6, 7, 20, 36, 2];
const flags = { external: true };

describe("records built from columns", () => {
  it("appendRecordsOfColumns writes appendRecords' bytes for the same messages, with the same uids", () => {
    const items = indexes.map((i) => ({ mapUid: mapUids[i], guid128: guids.subarray(16 * i, 16 * i + 16), flags: 0, keywords: [], saveDate: 1234567 }));
    const a = appendRecords(41, items);
    const b = appendRecordsOfColumns(41, indexes, { mapUids, guids }, 1234567);
    expect(b.uids).toEqual(a.uids);
    expect(encodeTransaction(b.records)).toEqual(encodeTransaction(a.records));
    // A GUID column not word-aligned in its buffer is copied byte-wise, to the same bytes.
    const shifted = new Uint8Array(guids.length + 1).subarray(1);
    shifted.set(guids);
    expect(encodeTransaction(appendRecordsOfColumns(41, indexes, { mapUids, guids: shifted }, 1234567).records)).toEqual(encodeTransaction(a.records));
    expect(appendRecordsOfColumns(41, [], { mapUids, guids }, 1).records).toEqual([]);
  });

  it("mapRecordRecordsOfColumns and refSetRecordsOfColumns write mapRecordRecords' and refSetRecords' bytes", () => {
    const places = indexes.map((i) => ({ mapUid: mapUids[i], fileId: fileIds[i], offset: offsets[i], size: sizes[i] }));
    expect(encodeTransaction(mapRecordRecordsOfColumns(indexes, mapUids, { fileIds, offsets, sizes }, flags))).toEqual(encodeTransaction(mapRecordRecords(places, flags)));
    const refs = indexes.map((i) => ({ mapUid: mapUids[i], refcount: refcounts[i] }));
    expect(encodeTransaction(refSetRecordsOfColumns(indexes, mapUids, refcounts, flags))).toEqual(encodeTransaction(refSetRecords(refs, flags)));
    expect(mapRecordRecordsOfColumns([], mapUids, { fileIds, offsets, sizes }, flags)).toEqual([]);
  });
});
