import { flagNames } from "../shared/flags.js";
import { getHeader, highestModseq, messageCount, position, recordAt, type IndexMapState } from "../index.js";
import { toJson } from "./json.js";

/** `mailstore replay --json`: position, the header fields a server reads, every message. */
export function stateJson(state: IndexMapState): unknown {
  const h = getHeader(state);
  const messages = [];
  for (let seq = 1; seq <= messageCount(state); seq++) {
    const r = recordAt(state, seq)!;
    messages.push({ uid: r.uid, flags: flagNames(r.flags), keywords: r.keywords, modseq: r.modseq });
  }
  return toJson({
    position: position(state),
    header: {
      uidValidity: h.uidValidity,
      nextUid: h.nextUid,
      messagesCount: h.messagesCount,
      highestModseq: highestModseq(state),
      seenMessagesCount: h.seenMessagesCount,
      deletedMessagesCount: h.deletedMessagesCount,
      firstRecentUid: h.firstRecentUid,
      firstUnseenUidLowwater: h.firstUnseenUidLowwater,
      firstDeletedUidLowwater: h.firstDeletedUidLowwater,
      indexId: h.indexId,
      logFileSeq: h.logFileSeq,
      logFileTailOffset: h.logFileTailOffset,
      logFileHeadOffset: h.logFileHeadOffset,
    },
    keywords: state.keywords,
    extensions: state.extensions.map((e) => ({ name: e.name, hdrSize: e.hdrSize, recordSize: e.recordSize, resetId: e.resetId })),
    messages,
  });
}

export function stateText(state: IndexMapState): string {
  const j = stateJson(state) as { position: { fileSeq: number; offset: number }; header: Record<string, unknown>; messages: Array<{ uid: number; flags: string[]; keywords: string[]; modseq: number }> };
  const lines = [`position ${j.position.fileSeq}:${j.position.offset}`];
  for (const [k, v] of Object.entries(j.header)) lines.push(`${k} = ${v}`);
  for (const m of j.messages) lines.push(messageLine(m));
  return lines.join("\n") + "\n";
}

/** One message of stateJson as a line: `uid N modseq M flags… keywords…`. */
export function messageLine(m: { uid: number; modseq: number; flags: string[]; keywords: string[] }): string {
  return `uid ${m.uid} modseq ${m.modseq} ${[...m.flags, ...m.keywords].join(" ")}`.trimEnd();
}
