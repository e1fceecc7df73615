import { promises as fsp, type Stats } from "node:fs";

/**
 * @returns what `path` is, or undefined when nothing is there (ENOENT):
 *   "deleted meanwhile" is an answer; a permission or I/O error is thrown.
 */
export async function statIfExists(path: string): Promise<Stats | undefined> {
  try {
    return await fsp.stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}
