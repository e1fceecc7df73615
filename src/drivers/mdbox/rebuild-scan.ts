/**
 * The first step of a rebuild (mdbox-storage-rebuild.c): read every m.N in
 * primary and ALT storage and list the messages found, with what their
 * metadata says (GUID, original mailbox). A file that stops making sense
 * keeps the messages before the bad spot; the rest is reported.
 */
import { MailCorruptedError } from "../../shared/errors.js";
import { decodeDboxFileHeader } from "../dbox/file-header.js";
import { FileWindow } from "../dbox/file-window.js";
import { guid128FromBytes, messageGuid128 } from "../dbox/guid.js";
import { dboxMessageSizeIfSound, decodeDboxMessageHeader } from "../dbox/message-header.js";
import { DboxMetadataForRebuild, textAt, walkDboxMetadata } from "../dbox/metadata.js";
import { mailboxNameOfStorageName } from "./deleted.js";
import { FoundMessages } from "./found-messages.js";
import type { LocatedFile, MdboxPaths } from "./paths.js";

/** Where a file stopped making sense. */
export interface BrokenSpot {
  readonly fileId: number;
  readonly path: string;
  readonly offset: number;
  readonly reason: string;
}

/** Everything found in the m.N files. */
export interface ScanResult {
  /** In (file_id, offset) order. */
  readonly messages: FoundMessages;
  readonly broken: BrokenSpot[];
  readonly highestFileId: number;
}

/** Reads every m.N; a file id present in both storages is read from primary (as readers look there first). */
export async function scanStorageFiles(paths: MdboxPaths): Promise<ScanResult> {
  const sink = new ScanSink();
  const highestFileId = scanFiles(await paths.listFiles(), sink);
  return { messages: sink.messages, broken: sink.broken, highestFileId };
}

/**
 * What scanFiles() finds, file after file: one object for the whole scan,
 * told of the file being read, rather than callbacks made anew for each
 * file (optimized code that inlined one file's callback was thrown away at
 * the next file's, and the scan compiled again).
 */
class ScanSink {
  readonly messages = new FoundMessages();
  readonly broken: BrokenSpot[] = [];
  readonly origMailboxes = new OrigMailboxes(this.messages);
  file: LocatedFile = { fileId: 0, path: "", alt: false };
  /**
   * One for the whole scan, not one per file: its `take` is the callback
   * walkDboxMetadata calls for every item, and optimized code that inlined
   * one file's `take` was thrown away at the next file's ("wrong call
   * target" in --trace-deopt) and the metadata walk compiled again.
   */
  readonly meta = new DboxMetadataForRebuild();

  /** The file stops making sense at `offset`. */
  brokenAt(offset: number, reason: string): void {
    this.broken.push({ fileId: this.file.fileId, path: this.file.path, offset, reason });
  }
}

/**
 * Metadata `B` values to mailbox name indexes. Few mailboxes, many messages,
 * and runs of messages from one mailbox: the last value's bytes are
 * compared first, and each value is decoded once.
 */
class OrigMailboxes {
  private last = new Uint8Array(0);
  private lastIndex = -1;
  private readonly byStorageName = new Map<string, number>();

  constructor(private readonly messages: FoundMessages) {}

  indexOf(bytes: Uint8Array, start: number, end: number): number {
    if (end - start === this.last.length && this.lastIndex >= 0 && sameBytes(bytes, start, this.last)) return this.lastIndex;
    const storageName = textAt(bytes, start, end);
    let index = this.byStorageName.get(storageName);
    if (index === undefined) {
      index = this.messages.mailboxIndex(mailboxNameOfStorageName(storageName));
      this.byStorageName.set(storageName, index);
    }
    this.last = bytes.slice(start, end);
    this.lastIndex = index;
    return index;
  }
}

function sameBytes(bytes: Uint8Array, start: number, other: Uint8Array): boolean {
  for (let i = 0; i < other.length; i++) if (bytes[start + i] !== other[i]) return false;
  return true;
}

/** Bytes first read for a metadata block (Dovecot's blocks are ~100 bytes), and for the file header line. */
const MIN_METADATA_BYTES = 256;

/**
 * Walks every m.N of `files` (in file_id order, primary before ALT),
 * reading message headers and metadata and skipping bodies: each message
 * found goes to `sink.messages`; where a file stops making sense,
 * `sink.brokenAt` is told and the walk goes on with the next file (the
 * messages before stay).
 * One call for the whole scan, the message loop inside the file loop: the
 * message loop's optimized code (V8 compiles it on the stack, "OSR", while
 * the first file is read) serves every file, where a call per file ran the
 * next file's first messages unoptimized until the function had compiled a
 * second time (--trace-opt: the file walk compiled twice per rebuild).
 * What is done per message is written out here rather than in helpers
 * (reading the metadata block, adding the message): V8 compiled each
 * helper on its own as it got hot, and then again inlined into this loop,
 * compile work on other threads that competed with the scan on two cores.
 * @returns the highest file id listed.
 */
function scanFiles(files: readonly LocatedFile[], sink: ScanSink): number {
  let highestFileId = 0;
  const seen = new Set<number>();
  const meta = sink.meta;
  const messages = sink.messages;
  // The last file's window: the next one reads into its buffer (fresh memory is slow to touch first).
  let previous: FileWindow | undefined;
  for (const f of files) {
    highestFileId = Math.max(highestFileId, f.fileId);
    if (seen.has(f.fileId)) continue;
    seen.add(f.fileId);
    let file: FileWindow;
    try {
      file = FileWindow.open(f.path, previous);
    } catch (err) {
      // Gone since the listing (a purge removed it): nothing to read. Other fs errors stop the rebuild.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      sink.broken.push({ fileId: f.fileId, path: f.path, offset: 0, reason: (err as Error).message });
      continue;
    }
    sink.file = f;
    let offset = 0;
    // One object per file, its base moved with the window (not one per message).
    const metaWhere = { path: f.path, baseOffset: 0 };
    // The place errors name, moved with the walk (a walk throws on its first error, so none is kept past it).
    const at = { path: f.path, offset: 0 };
    try {
      const { header, headerSize } = decodeDboxFileHeader(file.at(0, MIN_METADATA_BYTES), { path: f.path });
      const msgHeaderSize = header.msgHeaderSize;
      offset = headerSize;
      while (offset < file.size) {
        at.offset = offset;
        if (offset + msgHeaderSize > file.size) {
          throw new MailCorruptedError(`message header is truncated (${file.size - offset} of ${msgHeaderSize} bytes)`, at);
        }
        const head = file.at(offset, msgHeaderSize);
        // The header checked without an object (the check a dbox file walk makes of every header);
        // decodeDboxMessageHeader only for the error it names.
        let bodySize = dboxMessageSizeIfSound(head, offset - file.base, msgHeaderSize);
        if (bodySize < 0) bodySize = decodeDboxMessageHeader(head, offset - file.base, msgHeaderSize, at);
        const bodyEnd = offset + msgHeaderSize + bodySize;
        // Compare before reading on: the size field is untrusted.
        if (bodySize > file.size - offset - msgHeaderSize) {
          throw new MailCorruptedError(`message size ${bodySize} reaches past the end of the file`, at);
        }
        // The metadata block, its window grown until the block fits. Walked once: a block cut by the
        // window's end is walked again after a bigger read; one cut by the file's end is an error.
        let bytes: Uint8Array;
        for (let want = MIN_METADATA_BYTES; ; want *= 2) {
          bytes = file.at(bodyEnd, want);
          metaWhere.baseOffset = file.base;
          meta.reset();
          meta.end = walkDboxMetadata(bytes, bodyEnd - file.base, metaWhere, meta.take, file.base + bytes.length < file.size);
          if (meta.end >= 0) break;
        }
        if (meta.guidStart < 0 || meta.guidStart === meta.guidEnd) {
          sink.brokenAt(offset, "message is missing GUID");
        } else {
          const guidAt = messages.nextGuidAt();
          if (!guid128FromBytes(bytes, meta.guidStart, meta.guidEnd, messages.guids, guidAt)) {
            // Not 32 hex digits: the 128-bit form is a hash of the string.
            messages.guids.set(messageGuid128(textAt(bytes, meta.guidStart, meta.guidEnd)), guidAt);
          }
          const orig = meta.origStart < 0 ? -1 : sink.origMailboxes.indexOf(bytes, meta.origStart, meta.origEnd);
          messages.add(f.fileId, f.alt, offset, file.base + meta.end - offset, orig);
        }
        offset = file.base + meta.end;
      }
    } catch (err) {
      // The file stops making sense here: the messages before stay, the rest is reported.
      if (!(err instanceof MailCorruptedError)) throw err;
      sink.brokenAt(offset, err.message);
    } finally {
      file.close();
    }
    // Nothing keeps a view of the buffer past its file: the window refills it within a file already.
    previous = file;
  }
  return highestFileId;
}
