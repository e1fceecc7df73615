import { describe, expect, it } from "vitest";
import {
  IndexCorruptedError, InvalidArgumentError, isCorruptionError, LockTimeoutError, LogChainError, LogCorruptedError,
  LogHeaderError, LogPositionLostError, MailCorruptedError, MailstoreError,
} from "../../../src/shared/errors.js";

describe("isCorruptionError", () => {
  it("is true for a broken log or index file", () => {
    for (const err of [
      new LogCorruptedError("x", {}), new LogHeaderError("x", {}), new LogChainError("x", {}),
      new LogPositionLostError("x", {}), new IndexCorruptedError("x", {}),
    ]) expect(isCorruptionError(err)).toBe(true);
  });

  it("is false for an unsupported log, locks, bad input, mail files and fs errors", () => {
    for (const err of [
      new MailstoreError("LOG_INCOMPATIBLE", "x"), new LockTimeoutError("x", {}), new InvalidArgumentError("x"),
      new MailCorruptedError("x", {}), Object.assign(new Error("EACCES"), { code: "EACCES" }),
      Object.assign(new Error("EMFILE"), { code: "EMFILE" }), undefined,
    ]) expect(isCorruptionError(err)).toBe(false);
  });
});
