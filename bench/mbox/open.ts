import * as os from "node:os";
import * as path from "node:path";
import { resolveMailLocation } from "../../src/drivers/location-detect.js";
import { MboxStorageBackend } from "../../src/drivers/mbox/storage-backend.js";
import { MailstoreError, openStorage, Storage, type StorageOptions } from "../../src/index.js";

/**
 * Opens a mail location, mbox included even before storage.ts lists the mbox
 * driver (then the Storage is built around an MboxStorageBackend directly).
 */
export function openEngineStorage(location: string, options: StorageOptions = {}): Storage {
  try {
    return openStorage(location, options);
  } catch (err) {
    if (!(err instanceof MailstoreError && err.code === "UNSUPPORTED")) throw err;
  }
  const loc = resolveMailLocation(location, { home: os.homedir(), env: {} });
  if (loc.driver !== "mbox") throw new MailstoreError("UNSUPPORTED", `the ${loc.driver} driver is not available yet`);
  const backend = new MboxStorageBackend(path.resolve(loc.root), { ...(loc.inbox ? { inbox: path.resolve(loc.inbox) } : {}) });
  const Ctor = Storage as unknown as new (l: typeof loc, b: MboxStorageBackend, o: StorageOptions) => Storage;
  return new Ctor(loc, backend, options);
}

/** @returns true when the engine can open `format` storages. */
export function engineSupports(format: string): boolean {
  try {
    void openEngineStorage(`${format}:${path.join(os.tmpdir(), "mailstore-probe-never-created")}`).close();
    return true;
  } catch (err) {
    if (err instanceof MailstoreError && err.code === "UNSUPPORTED") return false;
    throw err;
  }
}
