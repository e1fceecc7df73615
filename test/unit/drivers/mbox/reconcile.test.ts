import { describe, expect, it } from "vitest";
import { reconcileMbox, type FileMessageUidInfo } from "../../../../src/drivers/mbox/reconcile.js";
import type { IndexedMessage } from "../../../../src/drivers/mbox/index-view.js";

const md5 = (n: number) => new Uint8Array(16).fill(n);
const ix = (uid: number, m?: number): IndexedMessage => ({ uid, flags: 0, keywords: [], ...(m !== undefined ? { md5: md5(m) } : {}) });
const file = (rawUid?: number, extra: Partial<FileMessageUidInfo> = {}): FileMessageUidInfo => ({ pseudo: false, ...(rawUid !== undefined ? { rawUid } : {}), ...extra });
const run = (msgs: FileMessageUidInfo[], indexed: IndexedMessage[], next: number, md5s: number[] = []) =>
  reconcileMbox(msgs, indexed, next, (i) => md5(md5s[i] ?? 200 + i));

describe("reconcileMbox (Dovecot 2.3 mbox sync UID rules)", () => {
  it("matches X-UIDs, reports the index messages passed over as vanished", () => {
    const r = run([file(1, { imapBaseUidLast: 4 }), file(3), file(4)], [ix(1), ix(2), ix(3), ix(4)], 5);
    expect(r.messages.map((m) => [m.uid, m.indexPos, m.needsUidHeader])).toEqual([[1, 0, false], [3, 2, false], [4, 3, false]]);
    expect(r.vanished).toEqual([1]);
    expect(r.nextUid).toBe(5);
  });

  it("gives a message without X-UID the next UID, and takes back one whose X-UID is exactly the next", () => {
    const r = run([file(1, { imapBaseUidLast: 1 }), file(2), file(undefined)], [ix(1)], 2);
    expect(r.messages.map((m) => [m.uid, m.indexPos, m.needsUidHeader])).toEqual([[1, 0, false], [2, -1, false], [3, -1, true]]);
    expect(r.nextUid).toBe(4);
  });

  it("refuses X-UIDs above the next UID, a reappearing expunged UID, and X-UID in a first message without X-IMAPbase", () => {
    expect(run([file(1, { imapBaseUidLast: 1 }), file(9)], [ix(1)], 2).messages[1]).toEqual({ uid: 2, indexPos: -1, needsUidHeader: true });
    expect(run([file(1, { imapBaseUidLast: 3 }), file(2)], [ix(1)], 4).messages[1]).toEqual({ uid: 4, indexPos: -1, needsUidHeader: true });
    expect(run([file(1)], [], 1).messages[0]).toEqual({ uid: 1, indexPos: -1, needsUidHeader: true });
  });

  it("finds a message without X-UID by header MD5; one not found renumbers everything after it", () => {
    const byMd5 = run([file(1, { imapBaseUidLast: 3 }), file(undefined), file(3)], [ix(1), ix(2, 7), ix(3)], 4, [0, 7]);
    expect(byMd5.messages.map((m) => [m.uid, m.indexPos, m.needsUidHeader])).toEqual([[1, 0, false], [2, 1, true], [3, 2, false]]);
    const lost = run([file(1, { imapBaseUidLast: 3 }), file(undefined), file(3)], [ix(1), ix(2, 7), ix(3)], 4, [0, 8]);
    expect(lost.messages.map((m) => m.uid)).toEqual([1, 4, 5]);
    expect(lost.vanished).toEqual([1, 2]);
  });

  it("X-IMAPbase raises the next UID; the pseudo message has UID 0", () => {
    const r = run([file(undefined, { pseudo: true, imapBaseUidLast: 9 }), file(undefined)], [], 1);
    expect(r.messages.map((m) => m.uid)).toEqual([0, 10]);
    expect(r.nextUid).toBe(11);
  });
});
