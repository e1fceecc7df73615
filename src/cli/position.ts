import { InvalidArgumentError } from "../shared/errors.js";
import type { LogPosition } from "../index.js";

/** Parses `SEQ:OFFSET` as printed by `mailstore log`. */
export function parsePosition(text: string): LogPosition {
  const m = /^(\d+):(\d+)$/.exec(text.trim());
  if (!m) throw new InvalidArgumentError(`position "${text}" is not SEQ:OFFSET`);
  return { fileSeq: Number(m[1]), offset: Number(m[2]) };
}
