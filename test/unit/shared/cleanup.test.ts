import { expect, it } from "vitest";
import { cleanupAfter, cleanupAll, type ErrorWithSuppressed } from "../../../src/shared/cleanup.js";

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

it("cleanupAll runs every step after a failing one; the first error is thrown, the later ones suppressed on it", async () => {
  const ran: number[] = [];
  const first = new Error("close failed") as ErrorWithSuppressed;
  const third = new Error("unlock failed");
  const thrown = await cleanupAll([
    () => {
      ran.push(1);
      throw first;
    },
    async () => void ran.push(2),
    async () => {
      ran.push(3);
      throw third;
    },
  ]).catch((err: unknown) => err);
  expect(ran).toEqual([1, 2, 3]);
  expect(thrown).toBe(first);
  expect(first.suppressed).toEqual([third]);
  await expect(cleanupAll([() => undefined])).resolves.toBeUndefined();
});
