import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root: the nearest directory above this module with package.json (from campaign/ or dist/campaign/). */
export const REPO_ROOT: string = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, "package.json"))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
  return dir;
})();

/**
 * A compiled campaign module that runs as its own process (workers), e.g.
 * distModule("campaign/crash/worker.js"). @throws when it is not built.
 */
export function distModule(relative: string): string {
  const file = path.join(REPO_ROOT, "dist", relative);
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first (campaign workers run from dist/)`);
  return file;
}
