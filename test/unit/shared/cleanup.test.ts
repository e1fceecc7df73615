import { expect, it } from "vitest";
import { cleanupAfter, type ErrorWithSuppressed } from "../../../src/shared/cleanup.js";

it("cleanupAfter runs the step; a failing step neither replaces the failure nor vanishes: it is kept on it as suppressed", async () => {
  const failure = new Error("write failed") as ErrorWithSuppressed;
  let ran = false;
  await cleanupAfter(failure, () => void (ran = true));
  expect(ran).toBe(true);
  expect(failure.suppressed).toBeUndefined();
  const closeError = Object.assign(new Error("EBADF: bad file descriptor, close"), { code: "EBADF" });
  await cleanupAfter(failure, async () => {
    throw closeError;
  });
  await cleanupAfter(failure, () => {
    throw new Error("second");
  });
  expect(failure.suppressed).toEqual([closeError, new Error("second")]);
});
