import { readDboxMessageAt } from "../../src/drivers/dbox/files.js";
import { MdboxMap } from "../../src/drivers/mdbox/map.js";
import { MdboxPaths } from "../../src/drivers/mdbox/paths.js";
import { MailstoreError } from "../../src/index.js";

/**
 * mdbox after a crash: every map record points at an intact message of an
 * existing m.N (primary storage or ALT), of the size the map says.
 * @returns what is wrong (empty: nothing).
 */
export async function mdboxMapProblems(root: string, altRoot?: string): Promise<string[]> {
  const paths = new MdboxPaths(root, altRoot);
  const map = new MdboxMap(paths);
  const problems: string[] = [];
  try {
    for (const e of map.open().entries()) {
      const located = paths.locate(e.fileId);
      if (!located) {
        problems.push(`map uid ${e.mapUid} points at m.${e.fileId}, which is gone`);
        continue;
      }
      const m = await readDboxMessageAt(located.path, e.offset);
      if (m.size !== e.size) problems.push(`map uid ${e.mapUid}: m.${e.fileId} offset ${e.offset} holds ${m.size} bytes, the map says ${e.size}`);
    }
  } catch (err) {
    if (!(err instanceof MailstoreError)) throw err;
    problems.push(`map check: ${err.message}`);
  } finally {
    await map.close();
  }
  return problems;
}
