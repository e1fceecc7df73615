import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FileWindow } from "../../../../src/drivers/dbox/file-window.js";

describe("FileWindow", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "file-window-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("reads what is asked, and a file cut after it was opened ends where the read found its end", () => {
    const file = path.join(dir, "m.1");
    // Larger than one read (256 KiB), so that a later offset needs a read of its own.
    fs.writeFileSync(file, Buffer.from(Array.from({ length: 600 * 1024 }, (_, i) => i & 0xff)));
    const window = FileWindow.open(file);
    try {
      expect(window.size).toBe(600 * 1024);
      const bytes = window.at(10, 20);
      expect(bytes[10 - window.base]).toBe(10);
      // A save's rollback cuts the file under a walk that holds no lock on it.
      fs.truncateSync(file, 100 * 1024);
      const rest = window.at(300 * 1024, 500);
      expect(rest.length).toBe(0);
      expect(window.size).toBe(300 * 1024);
      // The walk's stop test (base + bytes read >= size) now holds: it ends instead of asking again.
      expect(window.base + rest.length).toBeGreaterThanOrEqual(window.size);
    } finally {
      window.close();
    }
  });
});
