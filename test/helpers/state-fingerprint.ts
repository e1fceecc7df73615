/**
 * Comparing an in-memory index state with what its files give: for code
 * that builds a state from what it wrote instead of reading the log back (a
 * created log, IndexWriter.openCreated), whose result every later open must match.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { loadState } from "../../src/index-io/load-state.js";
import { encodeIndexFile } from "../../src/projections/index-file.js";
import type { IndexMapState } from "../../src/projections/state.js";

/** What a state is on disk (dovecot.index bytes) plus the log position and modseq it stands at. */
export function fingerprint(state: IndexMapState): unknown {
  return { index: Buffer.from(encodeIndexFile(state)).toString("hex"), modseq: state.logModseq, header: state.header };
}

/** The state of the log at `prefix` folded from the log alone (dovecot.index left out), copied to a new directory under `scratchDir`. */
export function replayedLog(prefix: string, scratchDir: string): IndexMapState {
  const copy = path.join(fs.mkdtempSync(path.join(scratchDir, "replay-")), "dovecot.index");
  fs.copyFileSync(prefix + ".log", copy + ".log");
  return loadState(copy);
}
