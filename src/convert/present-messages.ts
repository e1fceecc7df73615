/**
 * Recognising, on a second import, the messages a target mailbox already
 * has, so that they are not copied again.
 *
 * - By GUID, when the message has one and the target keeps the GUIDs it is
 *   given: sdbox and mdbox store it, Maildir stores it as the file name or
 *   a `G` uidlist field. An mbox source's GUID is its header MD5 (what
 *   `doveadm fetch guid` shows), which those targets keep too.
 * - By content otherwise: the SHA-256 of the message as stored with CRLF
 *   turned into LF (how the dbox and Maildir writers store it). That covers
 *   an mbox target, whose GUIDs are its own header MD5s and cannot be set,
 *   and source messages without a usable GUID (an mbox message without
 *   the headers its MD5 covers). Bodies cross formats byte for byte (test/
 *   interop/convert-roundtrip.test.ts), so the hash does too. The target's
 *   bodies are read once, only when a message needs it.
 *
 * Both are multisets: two identical messages in the source need two in the
 * target to be skipped twice.
 */
import { createHash } from "node:crypto";
import { searchUids } from "../api/search.js";
import type { Mailbox } from "../api/mailbox.js";

/** GUID of a message whose identifying headers are all missing (mbox header MD5 of nothing): not an identity. */
const EMPTY_MD5_GUID = "d41d8cd98f00b204e9800998ecf8427e";

/** @returns `guid` when it identifies a message, else undefined. */
export function usableGuid(guid: string): string | undefined {
  return guid !== "" && guid !== EMPTY_MD5_GUID ? guid : undefined;
}

/** How a skipped message was recognised. */
export type PresentMatch = "guid" | "content";

/** The messages of a target mailbox, by GUID and (on demand) by content. */
export class PresentMessages {
  private guids: Map<string, number> | undefined;
  private contents: Map<string, number> | undefined;
  /** The target's messages before the import: those it appends are not matched. */
  private readonly uids: readonly number[];

  /**
   * @param target the target mailbox, refreshed.
   * @param keepsGuids the target stores the GUIDs it is given (not mbox).
   */
  constructor(private readonly target: Mailbox, private readonly keepsGuids: boolean) {
    this.uids = searchUids(target.state, [{ type: "all" }]);
  }

  /** Number of messages the target had. */
  get count(): number {
    return this.uids.length;
  }

  /**
   * Whether the target has this message (and one fewer copy left to match).
   * @returns how it was recognised, or undefined when it is not there.
   */
  async take(guid: string, body: Uint8Array): Promise<PresentMatch | undefined> {
    if (this.uids.length === 0) return undefined;
    const id = this.keepsGuids ? usableGuid(guid) : undefined;
    if (id !== undefined) return takeOne(await this.byGuid(), id) ? "guid" : undefined;
    return takeOne(await this.byContent(), contentKey(body)) ? "content" : undefined;
  }

  private async byGuid(): Promise<Map<string, number>> {
    if (this.guids) return this.guids;
    const guids = new Map<string, number>();
    for await (const m of this.target.fetch(this.uids, ["guid"])) addOne(guids, m.guid);
    return (this.guids = guids);
  }

  private async byContent(): Promise<Map<string, number>> {
    if (this.contents) return this.contents;
    const contents = new Map<string, number>();
    for await (const m of this.target.fetch(this.uids, ["body"])) addOne(contents, contentKey(m.body));
    return (this.contents = contents);
  }
}

/** SHA-256 (hex) of `body` with CRLF as LF. */
function contentKey(body: Uint8Array): string {
  const hash = createHash("sha256");
  let from = 0;
  for (let i = 0; i < body.length - 1; i++) {
    if (body[i] === 0x0d && body[i + 1] === 0x0a) {
      hash.update(body.subarray(from, i));
      from = i + 1;
    }
  }
  hash.update(body.subarray(from));
  return hash.digest("hex");
}

function addOne(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

function takeOne(counts: Map<string, number>, key: string): boolean {
  const n = counts.get(key) ?? 0;
  if (n === 0) return false;
  if (n === 1) counts.delete(key);
  else counts.set(key, n - 1);
  return true;
}
