/**
 * Opens a `maildir:` location through the public Storage class. Until
 * src/api/storage.ts maps the maildir driver to MaildirStorageBackend, the
 * Storage is built around our backend directly (its constructor is private
 * to TypeScript only); afterwards openStorage() is used as is.
 */
import * as path from "node:path";
import { openStorage, Storage, type StorageOptions } from "../../../../src/index.js";
import { resolveMailLocation } from "../../../../src/drivers/location-detect.js";
import { MaildirStorageBackend } from "../../../../src/drivers/maildir/storage-backend.js";

export function openMaildirStorage(location: string, options: StorageOptions = {}): Storage {
  try {
    return openStorage(location, options);
  } catch (err) {
    if ((err as { code?: string }).code !== "UNSUPPORTED") throw err;
  }
  const loc = resolveMailLocation(location, { home: "/nonexistent", env: {} });
  const abs = (p: string | undefined) => (p === undefined || p === "" ? p : path.resolve(p));
  const backend = new MaildirStorageBackend(path.resolve(loc.root), {
    inbox: abs(loc.inbox), index: abs(loc.index), control: abs(loc.control), layout: loc.layout, utf8: loc.utf8,
  });
  const ctor = Storage as unknown as new (location: unknown, backend: unknown, options: StorageOptions) => Storage;
  return new ctor(loc, backend, options);
}
