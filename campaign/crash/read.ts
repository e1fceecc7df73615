import { flagNames, messageCount, recordAt, type Mailbox } from "../../src/index.js";
import { crashBody, crashIdOf } from "./messages.js";

/** One message as found: uid, crash id (undefined for any other message), flags (sorted) and whether its bytes are whole. */
export interface FoundMessage {
  readonly uid: number;
  readonly id: number | undefined;
  readonly flags: string[];
  readonly whole: boolean;
}

/** System flags without \Recent. */
const SYSTEM_FLAG_MASK = 0x1f;

/** Classifies a message's text and flags. */
export function foundMessage(uid: number, text: string, flags: string[]): FoundMessage {
  const id = crashIdOf(text);
  return { uid, id, flags: [...flags].sort(), whole: id !== undefined && text === crashBody(id) };
}

/** Every message of `box`, as the engine reads it. */
export async function readCrashMailbox(box: Mailbox): Promise<FoundMessage[]> {
  const state = await box.refresh();
  const out: FoundMessage[] = [];
  for (let seq = 1; seq <= messageCount(state); seq++) {
    const r = recordAt(state, seq)!;
    const text = Buffer.from(await box.readMessage(r.uid)).toString("latin1");
    out.push(foundMessage(r.uid, text, [...flagNames(r.flags & SYSTEM_FLAG_MASK), ...r.keywords]));
  }
  return out;
}
