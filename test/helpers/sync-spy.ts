import * as fs from "node:fs";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { vi } from "vitest";

/** The CommonJS fs object: patching it (then syncing) is what every ESM importer of node:fs sees. */
const fsModule = createRequire(import.meta.url)("node:fs") as typeof fs;

/**
 * Calls `seen` before every fsyncSync/fdatasyncSync the engine makes (the
 * call itself still happens); undo with stopWatchingSyncs().
 */
export function watchSyncs(seen: (call: "fsyncSync" | "fdatasyncSync", fd: number) => void): void {
  for (const name of ["fsyncSync", "fdatasyncSync"] as const) {
    const real = fs[name];
    vi.spyOn(fsModule, name).mockImplementation((fd: number) => {
      seen(name, fd);
      real(fd);
    });
  }
  // The engine imports node:fs as a namespace; syncBuiltinESMExports makes it see the spies.
  syncBuiltinESMExports();
}

export function stopWatchingSyncs(): void {
  vi.restoreAllMocks();
  syncBuiltinESMExports();
}
