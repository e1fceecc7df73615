import { describe, expect, it } from "vitest";
import { MDBOX_ROTATE_SIZE_DEFAULT, mdboxFileHasRoom } from "../../../../src/drivers/dbox/rotation.js";

describe("mdbox rotation rule", () => {
  it("defaults to Dovecot's 10M", () => {
    expect(MDBOX_ROTATE_SIZE_DEFAULT).toBe(10 * 1024 * 1024);
    expect(mdboxFileHasRoom({ fileSizeBytes: MDBOX_ROTATE_SIZE_DEFAULT - 101, mailSizeBytes: 100 })).toBe(true);
    expect(mdboxFileHasRoom({ fileSizeBytes: MDBOX_ROTATE_SIZE_DEFAULT - 100, mailSizeBytes: 100 })).toBe(false);
  });

  // Boundaries measured with doveadm save / import of 293-byte messages
  // into a 784-byte m.1 (two messages).
  it("a file from an earlier transaction takes a mail while size + mail < rotate", () => {
    expect(mdboxFileHasRoom({ fileSizeBytes: 784, mailSizeBytes: 293, rotateSizeBytes: 1078 })).toBe(true);
    expect(mdboxFileHasRoom({ fileSizeBytes: 784, mailSizeBytes: 293, rotateSizeBytes: 1077 })).toBe(false);
  });

  it("a file this transaction appended to takes one while size + mail <= rotate", () => {
    expect(mdboxFileHasRoom({ fileSizeBytes: 784, mailSizeBytes: 293, rotateSizeBytes: 1077, appendedInTransaction: true })).toBe(true);
    expect(mdboxFileHasRoom({ fileSizeBytes: 784, mailSizeBytes: 293, rotateSizeBytes: 1076, appendedInTransaction: true })).toBe(false);
  });
});
