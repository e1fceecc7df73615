/**
 * Calls on a bare descriptor run on libuv's thread pool, as promises, for
 * the few waits worth taking off the event loop: the last close of a purged
 * m.N (freeing its page cache), fdatasync and a directory's fsync. Elsewhere the
 * engine uses the synchronous calls on purpose (a small read is a few µs, a
 * pool round trip more). fs.promises works on FileHandles, not on the
 * descriptors these callers hold; and util.promisify would keep the fs
 * function of the moment this module loaded, where `fs` is looked up at each
 * call here, so that a test's spy on node:fs sees these calls too.
 */
import * as fs from "node:fs";

type Done<T> = (err: NodeJS.ErrnoException | null | undefined, value?: T) => void;

/** `start`'s callback call as a promise. */
function onPool<T>(start: (done: Done<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => start((err, value) => (err ? reject(err) : resolve(value as T))));
}

/** close(2). */
export function closeOnPool(fd: number): Promise<void> {
  return onPool<void>((done) => fs.close(fd, done));
}

/** fdatasync(2). */
export function fdatasyncOnPool(fd: number): Promise<void> {
  return onPool<void>((done) => fs.fdatasync(fd, done));
}

/** fsync(2). */
export function fsyncOnPool(fd: number): Promise<void> {
  return onPool<void>((done) => fs.fsync(fd, done));
}
