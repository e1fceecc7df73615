/**
 * The first step of a rebuild (mdbox-storage-rebuild.c): read every m.N in
 * primary and ALT storage and list the messages found, with what their
 * metadata says (GUID, original mailbox). A file that stops making sense
 * keeps the messages before the bad spot; the rest is reported.
 */
import { MailCorruptedError } from "../../shared/errors.js";
import { decodeDboxFileHeader } from "../dbox/file-header.js";
import { FileWindow } from "../dbox/file-window.js";
import { GUID_128_SIZE, guid128FromString, messageGuid128 } from "../dbox/guid.js";
import { decodeDboxMessageHeader } from "../dbox/message-header.js";
import { findDboxMetadataEnd, readDboxMetadataForRebuild, type DboxMetadataForRebuild } from "../dbox/metadata.js";
import { mailboxNameOfStorageName } from "./deleted.js";
import type { MdboxPaths } from "./paths.js";

/** A message found in an m.N file. */
export interface FoundMessage {
  readonly fileId: number;
  readonly alt: boolean;
  readonly offset: number;
  readonly size: number;
  readonly guid: string;
  /** Hex of the 128-bit GUID: the key messages are matched by. */
  readonly guidKey: string;
  readonly guid128: Uint8Array;
  readonly receivedTime: number | undefined;
  /** Metadata `B`, decoded to a mailbox name. */
  readonly origMailbox: string | undefined;
}

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
  readonly messages: FoundMessage[];
  readonly broken: BrokenSpot[];
  readonly highestFileId: number;
}

/** Reads every m.N; a file id present in both storages is read from primary (as readers look there first). */
export async function scanStorageFiles(paths: MdboxPaths): Promise<ScanResult> {
  const messages: FoundMessage[] = [];
  const broken: BrokenSpot[] = [];
  let highestFileId = 0;
  const seen = new Set<number>();
  // Few mailboxes, many messages: decode each `B` once.
  const names = new Map<string, string>();
  const mailboxNames = (storageName: string): string => {
    let name = names.get(storageName);
    if (name === undefined) names.set(storageName, (name = mailboxNameOfStorageName(storageName)));
    return name;
  };
  const guids = new GuidSlab();
  for (const f of await paths.listFiles()) {
    highestFileId = Math.max(highestFileId, f.fileId);
    if (seen.has(f.fileId)) continue;
    seen.add(f.fileId);
    let file: FileWindow;
    try {
      file = FileWindow.open(f.path);
    } catch (err) {
      // Gone since the listing (a purge removed it): nothing to read. Other fs errors stop the rebuild.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      broken.push({ fileId: f.fileId, path: f.path, offset: 0, reason: (err as Error).message });
      continue;
    }
    try {
      scanFile(file, f, (m) => {
        if (m.guid === undefined || m.guid === "") {
          broken.push({ fileId: f.fileId, path: f.path, offset: m.offset, reason: "message is missing GUID" });
          return;
        }
        const direct = guid128FromString(m.guid, guids.next());
        const guid128 = direct ?? messageGuid128(m.guid);
        messages.push({
          fileId: f.fileId, alt: f.alt, offset: m.offset, size: m.size, guid: m.guid, guid128,
          guidKey: direct !== undefined && !UPPER_HEX.test(m.guid) ? m.guid : Buffer.from(guid128).toString("hex"), receivedTime: m.receivedTime,
          origMailbox: m.origMailbox === undefined ? undefined : mailboxNames(m.origMailbox),
        });
      }, (offset, reason) => broken.push({ fileId: f.fileId, path: f.path, offset, reason }));
    } finally {
      file.close();
    }
  }
  return { messages, broken, highestFileId };
}

/**
 * 16-byte places for GUIDs, cut from shared buffers: a view per message
 * instead of an array with its own buffer, each of which the GC copied
 * while the scan went on (issue #11).
 */
class GuidSlab {
  private slab = new Uint8Array(0);
  private used = 0;

  next(): Uint8Array {
    if (this.used === this.slab.length) {
      this.slab = new Uint8Array(GUID_128_SIZE * 4096);
      this.used = 0;
    }
    this.used += GUID_128_SIZE;
    return this.slab.subarray(this.used - GUID_128_SIZE, this.used);
  }
}

/** A GUID of 32 hex digits is its own key when they are lowercase (the hex of its 128 bits). */
const UPPER_HEX = /[A-F]/;

/** Bytes first read for a metadata block (Dovecot's blocks are ~100 bytes), and for the file header line. */
const MIN_METADATA_BYTES = 256;

/**
 * Walks one m.N through `file`, reading message headers and metadata and
 * skipping bodies. Each message's metadata goes to `onMessage`; where the
 * file stops making sense, `onBroken` is told and the walk ends (the
 * messages before stay).
 */
function scanFile(
  file: FileWindow,
  where: { path: string },
  onMessage: (m: { offset: number; size: number; guid: string | undefined; receivedTime: number | undefined; origMailbox: string | undefined }) => void,
  onBroken: (offset: number, reason: string) => void,
): void {
  let offset = 0;
  try {
    const { header, headerSize } = decodeDboxFileHeader(file.at(0, MIN_METADATA_BYTES), { path: where.path });
    const msgHeaderSize = header.msgHeaderSize;
    offset = headerSize;
    while (offset < file.size) {
      const at = { path: where.path, offset };
      if (offset + msgHeaderSize > file.size) {
        throw new MailCorruptedError(`message header is truncated (${file.size - offset} of ${msgHeaderSize} bytes)`, at);
      }
      const head = file.at(offset, msgHeaderSize);
      const bodySize = decodeDboxMessageHeader(head, offset - file.base, msgHeaderSize, at);
      const bodyEnd = offset + msgHeaderSize + bodySize;
      // Compare before reading on: the size field is untrusted.
      if (bodySize > file.size - offset - msgHeaderSize) {
        throw new MailCorruptedError(`message size ${bodySize} reaches past the end of the file`, at);
      }
      const meta = readMetadataAt(file, bodyEnd, where.path);
      onMessage({ offset, size: meta.end - offset, guid: meta.guid, receivedTime: meta.receivedTime, origMailbox: meta.origMailbox });
      offset = meta.end;
    }
  } catch (err) {
    // The file stops making sense here: the messages before stay, the rest is reported.
    if (!(err instanceof MailCorruptedError)) throw err;
    onBroken(offset, err.message);
  }
}

/** The metadata block at file offset `offset`, with `end` as a file offset; the window grows until the block fits. */
function readMetadataAt(file: FileWindow, offset: number, path: string): DboxMetadataForRebuild {
  for (let want = MIN_METADATA_BYTES; ; want *= 2) {
    const bytes = file.at(offset, want);
    const start = offset - file.base;
    // The end is found unchecked first; readDboxMetadataForRebuild checks it, and says what is wrong when the file ends first.
    if (findDboxMetadataEnd(bytes, start) !== undefined || file.base + bytes.length >= file.size) {
      const meta = readDboxMetadataForRebuild(bytes, start, { path, baseOffset: file.base });
      return { ...meta, end: file.base + meta.end };
    }
  }
}
