import { scanTransactions } from "../../src/log/file.js";
import { decodeLogHeader } from "../../src/log/header.js";
import { Replay } from "../../src/projections/apply.js";
import { emptyIndexMap, type IndexMapState } from "../../src/projections/state.js";
import { LogCorruptedError } from "../../src/shared/errors.js";

/**
 * The state of a Replay fed by a scan of the log file `bytes` (named t.log):
 * with `reuse`, the records a replay at open gets (flag, keyword and ext-rec
 * updates left in the bytes); without, decoded objects. Or the
 * LogCorruptedError it met: only the log's own complaint is an outcome to
 * compare; anything else is thrown.
 */
export function replayScan(bytes: Uint8Array, reuse: boolean): IndexMapState | LogCorruptedError {
  const h = decodeLogHeader(bytes, "t.log");
  const run = new Replay(emptyIndexMap({ indexId: h.indexId }), [h]);
  try {
    scanTransactions(bytes, h, "t.log", (tx) => run.push(tx), undefined, { reuse });
    return run.finish();
  } catch (err) {
    if (err instanceof LogCorruptedError) return err;
    throw err;
  }
}
