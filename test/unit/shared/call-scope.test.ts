import { describe, expect, it } from "vitest";
import { CallScope } from "../../../src/shared/call-scope.js";

describe("CallScope", () => {
  it("gives each call chain its own value, nested and concurrent, and none outside", async () => {
    const scope = new CallScope<string>();
    expect(scope.getStore()).toBeUndefined();
    const seen: Array<string | undefined> = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const a = scope.run("a", async () => {
      await gate;
      seen.push(scope.getStore());
      await scope.run("a2", async () => void seen.push(scope.getStore()));
      seen.push(scope.getStore());
    });
    const b = scope.run("b", async () => {
      seen.push(scope.getStore());
      release();
      await a;
      seen.push(scope.getStore());
    });
    await Promise.all([a, b]);
    expect(seen).toEqual(["b", "a", "a2", "a", "b"]);
    expect(scope.getStore()).toBeUndefined();
  });

  it("a continuation that outlives its run() no longer sees the value", async () => {
    const scope = new CallScope<number>();
    let later!: Promise<number | undefined>;
    let go!: () => void;
    const gate = new Promise<void>((r) => (go = r));
    await scope.run(1, async () => {
      later = gate.then(() => scope.getStore());
    });
    go();
    expect(await later).toBeUndefined();
  });
});
