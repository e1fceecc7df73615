/**
 * The messages a rebuild finds in the m.N files, column by column: typed
 * arrays indexed by the message's place in (file_id, offset) order, GUIDs
 * packed 16 bytes each in one buffer, original mailboxes as indexes into a
 * short list of names. A rebuild holds every message of the storage at
 * once; an object, a GUID array and two GUID strings per message were most
 * of its garbage and of its peak RSS (issue #11).
 */
import { GUID_128_SIZE, guid128ToString } from "../dbox/guid.js";

const INITIAL_CAPACITY = 1024;

export class FoundMessages {
  count = 0;
  fileIds = new Uint32Array(INITIAL_CAPACITY);
  /** 1 where the file is in ALT storage. */
  alts = new Uint8Array(INITIAL_CAPACITY);
  offsets = new Float64Array(INITIAL_CAPACITY);
  sizes = new Float64Array(INITIAL_CAPACITY);
  /** Index into `mailboxNames` of metadata `B`, decoded; -1: none. */
  origMailboxes = new Int32Array(INITIAL_CAPACITY);
  /** GUID i (128-bit form) is guids[16 i, 16 i + 16). */
  guids = new Uint8Array(INITIAL_CAPACITY * GUID_128_SIZE);
  readonly mailboxNames: string[] = [];
  private readonly nameIndexes = new Map<string, number>();

  /**
   * Makes room for one more message and returns where its GUID goes in
   * `guids`: the caller writes it there, then add()s the message (or not).
   */
  nextGuidAt(): number {
    if (this.count === this.fileIds.length) this.grow();
    return this.count * GUID_128_SIZE;
  }

  /** Adds a message whose GUID is already at nextGuidAt(). @returns its index. */
  add(fileId: number, alt: boolean, offset: number, size: number, origMailbox: number): number {
    const i = this.count++;
    this.fileIds[i] = fileId;
    this.alts[i] = alt ? 1 : 0;
    this.offsets[i] = offset;
    this.sizes[i] = size;
    this.origMailboxes[i] = origMailbox;
    return i;
  }

  /** @returns the index of mailbox name `name`, added to the list when new. */
  mailboxIndex(name: string): number {
    let index = this.nameIndexes.get(name);
    if (index === undefined) {
      index = this.mailboxNames.push(name) - 1;
      this.nameIndexes.set(name, index);
    }
    return index;
  }

  /** Message i's original mailbox (metadata `B`, decoded), if it has one. */
  origMailbox(i: number): string | undefined {
    const n = this.origMailboxes[i];
    return n < 0 ? undefined : this.mailboxNames[n];
  }

  /** Message i's GUID: a view of `guids` (valid until the next nextGuidAt()). */
  guid128(i: number): Uint8Array {
    return this.guids.subarray(i * GUID_128_SIZE, (i + 1) * GUID_128_SIZE);
  }

  /** Message i's GUID as 32 lowercase hex digits. */
  guidHex(i: number): string {
    return guid128ToString(this.guid128(i));
  }

  private grow(): void {
    const capacity = this.fileIds.length * 2;
    const grown = <T extends Uint8Array | Uint32Array | Int32Array | Float64Array>(a: T, make: new (n: number) => T, per = 1): T => {
      const out = new make(capacity * per);
      out.set(a);
      return out;
    };
    this.fileIds = grown(this.fileIds, Uint32Array);
    this.alts = grown(this.alts, Uint8Array);
    this.offsets = grown(this.offsets, Float64Array);
    this.sizes = grown(this.sizes, Float64Array);
    this.origMailboxes = grown(this.origMailboxes, Int32Array);
    this.guids = grown(this.guids, Uint8Array, GUID_128_SIZE);
  }
}
