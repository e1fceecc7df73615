import { describe, expect, it } from "vitest";
import {
  decodeMaildirHeader,
  EMPTY_MAILDIR_HEADER,
  encodeMaildirHeader,
  maildirDirsChanged,
  maildirHeaderChanged,
  type MaildirIndexHeader,
} from "../../../../src/drivers/maildir/index-header.js";

// Written by doveadm 2.3.19 (ext-hdr of the `maildir` extension after a sync).
const DOVECOT_HEX = "5d15046b5d15046b99351f1b5d15046b5d15046b992ce21a5d15046b9950d61bb5000000";

const clean: MaildirIndexHeader = { ...EMPTY_MAILDIR_HEADER, newCheckTime: 1000, newMtime: 900, newMtimeNsecs: 5, curCheckTime: 1000, curMtime: 800, curMtimeNsecs: 7 };

describe("maildir index header", () => {
  it("decodes Dovecot's 36 bytes and encodes them back", () => {
    const bytes = Buffer.from(DOVECOT_HEX, "hex");
    const hdr = decodeMaildirHeader(bytes);
    expect(hdr.newMtime).toBe(0x6b04155d);
    expect(hdr.newMtimeNsecs).toBe(0x1b1f3599);
    expect(hdr.uidlistSize).toBe(0xb5);
    expect(Buffer.from(encodeMaildirHeader(hdr)).toString("hex")).toBe(DOVECOT_HEX);
    expect(decodeMaildirHeader(new Uint8Array(8)).uidlistSize).toBe(0); // short data reads as zeros
  });

  it("quick check: only a moved mtime (seconds or nanoseconds) means a scan", () => {
    expect(maildirDirsChanged(clean, { mtime: 900, mtimeNsecs: 5 }, { mtime: 800, mtimeNsecs: 7 }, 5000)).toEqual({ newChanged: false, curChanged: false });
    expect(maildirDirsChanged(clean, { mtime: 900, mtimeNsecs: 6 }, { mtime: 800, mtimeNsecs: 7 }, 5000)).toEqual({ newChanged: true, curChanged: false });
    expect(maildirDirsChanged(clean, { mtime: 900, mtimeNsecs: 5 }, { mtime: 801, mtimeNsecs: 7 }, 5000)).toEqual({ newChanged: false, curChanged: true });
    expect(maildirDirsChanged(EMPTY_MAILDIR_HEADER, { mtime: 1, mtimeNsecs: 0 }, { mtime: 1, mtimeNsecs: 0 }, 5000)).toEqual({ newChanged: true, curChanged: true });
  });

  it("a scan within a second of the change is repeated once that second is over", () => {
    const dirty = { ...clean, curCheckTime: 801, curMtime: 800 };
    const same = { mtime: 800, mtimeNsecs: 7 };
    expect(maildirDirsChanged(dirty, { mtime: 900, mtimeNsecs: 5 }, same, 802).curChanged).toBe(false);
    expect(maildirDirsChanged(dirty, { mtime: 900, mtimeNsecs: 5 }, same, 803).curChanged).toBe(true);
  });

  it("is rewritten when a stamp or the dirty state changes, not for a later check time alone", () => {
    expect(maildirHeaderChanged(clean, { ...clean, newCheckTime: 2000 })).toBe(false);
    expect(maildirHeaderChanged(clean, { ...clean, uidlistSize: 3 })).toBe(true);
    expect(maildirHeaderChanged(clean, { ...clean, curCheckTime: 800 })).toBe(true);
  });
});
