import * as fs from "node:fs";
import * as path from "node:path";

/**
 * Every entry under `root` (root itself as "."), keyed by its path relative
 * to `root` and described by `describe` (lstat, so links are not followed).
 */
export function describeTree(root: string, describe: (file: string, st: fs.BigIntStats) => string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (p: string): void => {
    const st = fs.lstatSync(p, { bigint: true });
    out.set(path.relative(root, p) || ".", describe(p, st));
    if (st.isDirectory()) for (const name of fs.readdirSync(p).sort()) walk(path.join(p, name));
  };
  walk(root);
  return out;
}

/** Permission bits (with set-id and sticky bits) of a stat, in octal. */
export function modeBits(st: fs.BigIntStats): string {
  return (Number(st.mode) & 0o7777).toString(8);
}
