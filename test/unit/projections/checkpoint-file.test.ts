import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { replay } from "../../../src/projections/apply.js";
import { readCheckpoint, writeCheckpoint } from "../../../src/index-io/checkpoint-file.js";
import { encodeIndexFile } from "../../../src/projections/index-file.js";
import { emptyIndexMap } from "../../../src/projections/state.js";
import { HDR, LogBuilder, R } from "./log-builder.js";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "checkpoint-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function state(n: number) {
  const b = new LogBuilder();
  return replay([b.tx(R.headerU32(HDR.uidValidity, 1), R.append(Array.from({ length: n }, (_, i) => i + 1)))], emptyIndexMap({ indexId: 5 }));
}

describe("checkpoint files", () => {
  it("reads nothing when there is no dovecot.index", () => {
    expect(readCheckpoint(path.join(dir, "dovecot.index"))).toBeUndefined();
  });

  it("writes via dovecot.index.tmp + rename and reads back the same bytes", () => {
    const p = path.join(dir, "dovecot.index");
    fs.writeFileSync(`${p}.tmp`, "stale");
    fs.writeFileSync(`${p}.log`, "", { mode: 0o640 });
    writeCheckpoint(p, state(3), { fsync: false });
    expect(fs.existsSync(`${p}.tmp`)).toBe(false);
    expect(fs.statSync(p).mode & 0o777).toBe(0o640);
    expect(encodeIndexFile(readCheckpoint(p)!)).toEqual(encodeIndexFile(state(3)));
  });

  it("keeps the previous file as dovecot.index.backup (a hard link) when asked", () => {
    const p = path.join(dir, "dovecot.index");
    writeCheckpoint(p, state(1), { backup: true });
    expect(fs.existsSync(`${p}.backup`)).toBe(false);
    const firstIno = fs.statSync(p).ino;
    writeCheckpoint(p, state(2), { backup: true });
    expect(fs.statSync(`${p}.backup`).ino).toBe(firstIno);
    expect(fs.existsSync(`${p}.backup.tmp`)).toBe(false);
    expect(encodeIndexFile(readCheckpoint(`${p}.backup`)!)).toEqual(encodeIndexFile(state(1)));
    expect(encodeIndexFile(readCheckpoint(p)!)).toEqual(encodeIndexFile(state(2)));
  });
});
