import { describe, expect, it } from "vitest";
import { ReplicationError } from "../../../src/shared/errors.js";
import { checkToken, DEFAULT_NAMES, isStorageSubject, isStoreLevelSubject, isSubscriptionsSubject, mailboxSubject, storageSubject, storageSubjects, subscriptionsSubject } from "../../../src/replication/subjects.js";
import {
  decodeCommit, decodeStorageEvent, encodeCommit, encodeStorageEvent, WIRE_VERSION, type ShippedCommit, type ShippedLogRange, type ShippedStorageEvent,
} from "../../../src/replication/wire.js";

const commit: ShippedCommit = {
  version: WIRE_VERSION, storageId: "alice", mailboxGuid: "0123456789abcdef0123456789abcdef", mailbox: "Sub/Child", uidValidity: 1796534791,
  writerGuid: "fedcba9876543210fedcba9876543210", start: { fileSeq: 1, offset: 40 }, end: { fileSeq: 2, offset: 96 }, modseq: 2n ** 40n + 3n,
  segments: [{ fileSeq: 1, headerBytes: new Uint8Array(40).fill(7), fromOffset: 40, modseqAtFrom: 2n ** 40n, bytes: new Uint8Array([1, 2, 3]) }],
  bodies: [
    { uid: 7, guid: "g7", receivedTime: 1700000000, body: new Uint8Array([0x0d, 0x0a, 0xff]), sizeBytes: 3 },
    { uid: 8, guid: "g8", receivedTime: 1700000001, objectName: "g8", sizeBytes: 2_000_000 },
  ],
};

const mapLog: ShippedLogRange[] = [{
  log: "map", start: { fileSeq: 3, offset: 200 }, end: { fileSeq: 3, offset: 260 },
  segments: [{ fileSeq: 3, headerBytes: new Uint8Array(40).fill(9), fromOffset: 200, modseqAtFrom: 5n, bytes: new Uint8Array(60).fill(4) }],
}];

const altmove: ShippedStorageEvent = {
  version: WIRE_VERSION, kind: "storage", storageId: "alice", writerGuid: "fedcba9876543210fedcba9876543210", eventId: "e1",
  op: { type: "altmove", mailboxGuid: "0123456789abcdef0123456789abcdef", mailbox: "INBOX", uidValidity: 17, uids: [4, 9], toAlt: true }, mapLog,
};

describe("wire", () => {
  it("round-trips a shipped commit, 64-bit modseqs and bytes included", () => {
    expect(decodeCommit(encodeCommit(commit), "s", 1)).toEqual(commit);
  });

  it("round-trips a commit's map log ranges and a storage event's", () => {
    expect(decodeCommit(encodeCommit({ ...commit, mapLog }), "s", 1)).toEqual({ ...commit, mapLog });
    expect(decodeStorageEvent(encodeStorageEvent(altmove), "mail.alice._storage", 2)).toEqual(altmove);
    expect(decodeStorageEvent(encodeStorageEvent({ ...altmove, op: { type: "purge" }, mapLog: [] }), "s", 3).op).toEqual({ type: "purge" });
    const list = { type: "subscriptions" as const, names: ["INBOX", "Grüße/日本", "Not/Here"] };
    expect(decodeStorageEvent(encodeStorageEvent({ ...altmove, op: list, mapLog: [] }), "mail.alice._subscriptions", 5).op).toEqual(list);
  });

  it("round-trips a seed part, 64-bit message modseqs included", () => {
    const seed = {
      part: 2, last: true, nextUid: 90, keywords: ["work", "$Label1"], tracksModseqs: true,
      messages: [{ uid: 7, flags: 9, keywords: ["work"] }, { uid: 8, flags: 0, keywords: [] }], modseqs: [{ uid: 7, modseq: 2n ** 40n + 1n }, { uid: 8, modseq: 5n }],
    };
    const part: ShippedCommit = { ...commit, start: commit.end, segments: [], seed };
    expect(decodeCommit(encodeCommit(part), "s", 1)).toEqual(part);
  });

  it("refuses a commit read as a storage event, and a storage event read as a commit (a subject a newer writer added)", () => {
    expect(() => decodeStorageEvent(encodeCommit(commit), "mail.alice._storage", 4)).toThrow(/not a storage event/);
    expect(() => decodeCommit(encodeStorageEvent(altmove), "mail.alice._newer", 4)).toThrow(ReplicationError);
    expect(() => decodeCommit(encodeStorageEvent(altmove), "mail.alice._newer", 4)).toThrow(/not a mailbox commit.*kind storage/);
  });

  it("refuses another version or bytes that are not a commit, with a typed error naming the subject", () => {
    expect(() => decodeCommit(encodeCommit({ ...commit, version: 99 }), "mail.a.b", 5)).toThrow(ReplicationError);
    expect(() => decodeCommit(new Uint8Array([0xc1]), "mail.a.b", 5)).toThrow(/mail\.a\.b.*stream message 5/);
  });
});

describe("subjects", () => {
  it("one subject per mailbox under the storage id; tokens that would break a subject are refused", () => {
    expect(mailboxSubject(DEFAULT_NAMES, "alice", "0123")).toBe("mail.alice.0123");
    expect(storageSubjects(DEFAULT_NAMES, "alice")).toBe("mail.alice.>");
    // The storage's own subject: under the replica's filter, and never a mailbox GUID (32 hex digits).
    expect(storageSubject(DEFAULT_NAMES, "alice")).toBe("mail.alice._storage");
    expect(isStorageSubject("mail.alice._storage")).toBe(true);
    expect(isStorageSubject(mailboxSubject(DEFAULT_NAMES, "alice", "0123456789abcdef0123456789abcdef"))).toBe(false);
    // The subscriptions' subject: beside it, also never a mailbox GUID; both carry storage events, not commits.
    expect(subscriptionsSubject(DEFAULT_NAMES, "alice")).toBe("mail.alice._subscriptions");
    expect(isSubscriptionsSubject("mail.alice._subscriptions")).toBe(true);
    expect(isStorageSubject("mail.alice._subscriptions")).toBe(false);
    expect(isStoreLevelSubject("mail.alice._subscriptions") && isStoreLevelSubject("mail.alice._storage")).toBe(true);
    expect(isStoreLevelSubject(mailboxSubject(DEFAULT_NAMES, "alice", "0123456789abcdef0123456789abcdef"))).toBe(false);
    for (const bad of ["a.b", "a*", ">", "", "a b"]) expect(() => checkToken("storage id", bad)).toThrow(/NATS subject token/);
  });
});
