import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeBundle, encodeBundle } from "../../../src/forensics/bundle.js";
import { exportBundle, importBundle } from "../../../src/forensics/export.js";
import { TransactionLog } from "../../../src/log/log.js";
import { readLog } from "../../../src/log/view.js";
import { logTransaction } from "../../helpers/log-arbitraries.js";
import { InvalidArgumentError } from "../../../src/shared/errors.js";

describe("event bundles", () => {
  it("export → encode → decode → import-events writes a log identical byte for byte (msgpack and JSON)", async () => {
    await fc.assert(fc.asyncProperty(fc.array(logTransaction, { minLength: 1, maxLength: 8 }), fc.constantFrom("msgpack" as const, "json" as const), async (txs, encoding) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-bundle-"));
      try {
        const prefix = path.join(dir, "src", "dovecot.index");
        fs.mkdirSync(path.dirname(prefix));
        const log = TransactionLog.open(prefix, { create: { indexId: 77 }, fsync: "never" });
        await log.appendTransactions(txs);
        await log.close();
        const bundle = decodeBundle(encodeBundle(exportBundle(prefix), encoding), "b");
        expect(bundle.transactions.map((t) => t.records)).toEqual(txs);
        const target = path.join(dir, "dst", "dovecot.index");
        fs.mkdirSync(path.dirname(target));
        importBundle(bundle, target);
        expect(Buffer.compare(fs.readFileSync(target + ".log"), fs.readFileSync(prefix + ".log"))).toBe(0);
        expect(readLog(target).transactions.length).toBe(txs.length);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }), { numRuns: 40 });
  });

  it("rejects what is not a bundle with a typed error", () => {
    expect(() => decodeBundle(Buffer.from("{\"format\":\"other\"}"), "x.json")).toThrow(InvalidArgumentError);
    expect(() => decodeBundle(Buffer.from([0xc1, 0x00]), "x.mp")).toThrow(InvalidArgumentError);
  });
});
