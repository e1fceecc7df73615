/**
 * Calls on a bare descriptor run on libuv's thread pool, as promises, for
 * the few waits worth taking off the event loop: a whole m.N read, the last
 * close of a purged m.N (freeing its page cache), fdatasync. Elsewhere the
 * engine uses the synchronous calls on purpose (a small read is a few µs, a
 * pool round trip more). fs.promises works on FileHandles, not on the
 * descriptors these callers hold.
 */
import * as fs from "node:fs";
import { promisify } from "node:util";

/** pread(2): resolves to `{ bytesRead }`. */
export const readOnPool = promisify(fs.read);
/** close(2). */
export const closeOnPool = promisify(fs.close);
/** fdatasync(2). */
export const fdatasyncOnPool = promisify(fs.fdatasync);
