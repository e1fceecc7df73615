/**
 * Opens any mail location as a Storage, mbox included: through openStorage
 * once storage.ts knows the mbox driver, and until then by building the
 * Storage around an MboxStorageBackend (test-only; Storage's constructor is
 * private to library code).
 */
import * as os from "node:os";
import * as path from "node:path";
import { resolveMailLocation } from "../../../../src/drivers/location-detect.js";
import { MboxStorageBackend } from "../../../../src/drivers/mbox/storage-backend.js";
import { MailstoreError, openStorage, Storage, type StorageOptions } from "../../../../src/index.js";

export function openAnyStorage(location: string, options: StorageOptions = {}): Storage {
  try {
    return openStorage(location, options);
  } catch (err) {
    if (!(err instanceof MailstoreError && err.code === "UNSUPPORTED")) throw err;
  }
  const loc = resolveMailLocation(location, { home: options.home ?? os.homedir(), env: options.env ?? process.env });
  if (loc.driver !== "mbox") throw new MailstoreError("UNSUPPORTED", `the ${loc.driver} driver is not available yet`);
  const backend = new MboxStorageBackend(path.resolve(loc.root), {
    ...(loc.inbox ? { inbox: path.resolve(loc.inbox) } : {}),
    ...(loc.index ? { index: path.resolve(loc.index) } : {}),
  });
  const StorageCtor = Storage as unknown as new (l: typeof loc, b: MboxStorageBackend, o: StorageOptions) => Storage;
  return new StorageCtor(loc, backend, options);
}

/** @returns true when `format` can be opened here (its driver exists). */
export function formatAvailable(format: string, dir: string): boolean {
  try {
    const s = openAnyStorage(`${format}:${dir}`);
    void s.close();
    return true;
  } catch (err) {
    if (err instanceof MailstoreError && err.code === "UNSUPPORTED") return false;
    throw err;
  }
}
