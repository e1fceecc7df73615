/**
 * Creating, resizing and selecting extensions (transaction-log.md §4.6,
 * index-file.md §5): the part of EXT_INTRO that the keywords code also uses
 * for its implicit, never-logged intros.
 */
import type { ExtIntro } from "../log/types.js";
import { EXT_ID_BY_NAME, EXT_INTRO_FLAG_NO_SHRINK } from "../log/types.js";
import type { ApplyContext } from "./apply-context.js";
import { BASE_RECORD_SIZE } from "./base-header.js";
import { layoutRecord, type FieldMove } from "./ext-layout.js";
import { align8 } from "./header-layout.js";
import { extIdOf, type CurrentExt } from "./state.js";

/** MAIL_INDEX_EXT_HEADER_MAX_SIZE. */
export const EXT_HEADER_MAX_SIZE = 16 * 1024 * 1024 - 1;
export const EXT_RECORD_MAX_SIZE = 32768;
export const KEYWORDS_EXT_NAME = "keywords";
const EXT_NAME_PATTERN = /^[A-Za-z0-9 _-]{1,63}$/;

/** Why an intro's sizes are unacceptable (mail_index_map_ext_hdr_check), or undefined. */
function introProblem(intro: ExtIntro, name: string): string | undefined {
  if (intro.recordSize === 0 && intro.hdrSize === 0) return "Invalid field values";
  if (!EXT_NAME_PATTERN.test(name)) return "Broken name";
  if (intro.recordAlign > 8) return `record_align ${intro.recordAlign} > 8`;
  if (intro.recordSize !== 0 && intro.recordAlign === 0) return "Invalid field values";
  if (intro.recordSize >= EXT_RECORD_MAX_SIZE) return "Record size is too large";
  if (intro.hdrSize > EXT_HEADER_MAX_SIZE) return `Headersize too large (${intro.hdrSize})`;
  return undefined;
}

/**
 * Applies one intro (mail_index_sync_ext_intro): selects an existing
 * extension (resizing it when its reset_id matches) or creates a new one, and
 * makes it the current extension. `internal` is the keywords code's own
 * intro: it may name "keywords", and a newly created extension is not
 * selected.
 */
export function applyIntro(ctx: ApplyContext, intro: ExtIntro, internal = false): void {
  const exts = ctx.exts;
  let extId: number;
  let name: string;
  if (intro.extId !== EXT_ID_BY_NAME) {
    if (intro.extId >= exts.length) throw ctx.corrupt(`Extension introduction for unknown id ${intro.extId}`);
    extId = intro.extId;
    name = exts[extId].name;
  } else {
    if (intro.name === "") throw ctx.corrupt("Extension introduction without id or name");
    name = intro.name;
    extId = extIdOf({ extensions: exts }, name);
  }
  if (!internal && name === KEYWORDS_EXT_NAME) throw ctx.corrupt("Extension introduction for keywords");
  const problem = introProblem(intro, name);
  if (problem !== undefined) throw ctx.corrupt(`Broken extension introduction: ${problem}`);

  if (extId >= 0) {
    const ignore = intro.resetId !== exts[extId].resetId;
    if (!ignore) resizeExtension(ctx, extId, intro, (intro.flags & EXT_INTRO_FLAG_NO_SHRINK) !== 0);
    setCurrentExt(ctx, { extId, ignore, recordSize: intro.recordSize });
    return;
  }
  const registry = ctx.changeRegistry();
  registry.push({
    name,
    resetId: intro.resetId,
    hdrSize: intro.hdrSize,
    recordOffset: 0,
    recordSize: intro.recordSize,
    recordAlign: intro.recordAlign,
    hdrData: new Uint8Array(align8(intro.hdrSize)),
  });
  extId = registry.length - 1;
  relayout(ctx, extId, 0);
  setCurrentExt(ctx, internal ? null : { extId, ignore: false, recordSize: intro.recordSize });
}

/** Assigns only when the value differs, so re-selecting the same extension changes nothing. */
function setCurrentExt(ctx: ApplyContext, next: CurrentExt | null): void {
  const cur = ctx.draft.currentExt;
  if (cur === next) return;
  if (cur !== null && next !== null && cur.extId === next.extId && cur.ignore === next.ignore && cur.recordSize === next.recordSize) return;
  ctx.draft.currentExt = next;
}

/**
 * sync_ext_resize: header data grows with zeros or (without NO_SHRINK) is cut
 * at the padded size; record size and alignment grow, or shrink without
 * NO_SHRINK; a record change recomputes the whole layout.
 */
function resizeExtension(ctx: ApplyContext, extId: number, intro: ExtIntro, noShrink: boolean): void {
  const plain = ctx.exts[extId];
  const recordChanged = plain.recordAlign !== intro.recordAlign || plain.recordSize !== intro.recordSize;
  if (!recordChanged) {
    if (align8(intro.hdrSize) < align8(plain.hdrSize)) {
      if (noShrink) return;
    } else if (plain.hdrSize === intro.hdrSize) {
      return;
    }
  }
  const ext = ctx.changeRegistry()[extId];
  const oldPadded = align8(ext.hdrSize);
  const newPadded = align8(intro.hdrSize);
  if (newPadded < oldPadded) {
    if (!noShrink) {
      ext.hdrData = ext.hdrData.slice(0, newPadded);
      ext.hdrSize = intro.hdrSize;
    }
  } else if (newPadded > oldPadded) {
    const data = new Uint8Array(newPadded);
    data.set(ext.hdrData);
    ext.hdrData = data;
    ext.hdrSize = intro.hdrSize;
  } else {
    // Same padded size: Dovecot takes the new hdr_size even with NO_SHRINK.
    ext.hdrSize = intro.hdrSize;
  }

  let reorder = false;
  if (ext.recordAlign < intro.recordAlign || (ext.recordAlign > intro.recordAlign && !noShrink)) {
    ext.recordAlign = intro.recordAlign;
    reorder = true;
  }
  const oldRecordSize = ext.recordSize;
  if (ext.recordSize < intro.recordSize || (ext.recordSize > intro.recordSize && !noShrink)) {
    ext.recordSize = intro.recordSize;
    reorder = true;
  }
  if (reorder) relayout(ctx, extId, oldRecordSize);
}

/**
 * sync_ext_reorder: recomputes every field's offset and the record size, and
 * moves the records' bytes when anything moved. The changed extension keeps
 * at most its old size of data (new bytes are zero; a shrink drops the tail).
 */
function relayout(ctx: ApplyContext, changedId: number, oldRecordSize: number): void {
  const exts = ctx.changeRegistry();
  const layout = layoutRecord(exts);
  const editor = ctx.edit();
  // A field that had no bytes before (a new extension) lands on padding, which
  // is always zero, so it alone never forces the O(messages) rewrite.
  const moved =
    layout.recordSize !== editor.recordSize ||
    exts.some((e, i) => e.recordSize > 0 && e.recordOffset !== layout.offsets[i] && (i !== changedId || oldRecordSize > 0));
  const changed = exts[changedId];
  if (moved) {
    const moves: FieldMove[] = [];
    exts.forEach((e, i) => {
      const size = i === changedId ? Math.min(e.recordSize, oldRecordSize) : e.recordSize;
      if (size > 0) moves.push({ from: e.recordOffset, to: layout.offsets[i], size });
    });
    editor.relayout(layout.recordSize, moves);
  } else if (oldRecordSize > changed.recordSize) {
    // Same layout but the field shrank: its dropped tail becomes padding. Dovecot's
    // rewrite zeroes padding except the base record's bytes 5..7, which it copies.
    const from = Math.max(changed.recordOffset + changed.recordSize, BASE_RECORD_SIZE);
    const to = changed.recordOffset + oldRecordSize;
    if (to > from) editor.clearField(from, to - from);
  }
  exts.forEach((e, i) => {
    if (e.recordOffset !== layout.offsets[i]) e.recordOffset = layout.offsets[i];
  });
}
