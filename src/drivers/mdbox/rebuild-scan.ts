/**
 * The first step of a rebuild (mdbox-storage-rebuild.c): read every m.N in
 * primary and ALT storage and list the messages found, with what their
 * metadata says (GUID, original mailbox). A file that stops making sense
 * keeps the messages before the bad spot; the rest is reported.
 */
import { promises as fsp } from "node:fs";
import { MailCorruptedError } from "../../shared/errors.js";
import { locateDboxBody } from "../dbox/file-format.js";
import { decodeDboxFileHeader } from "../dbox/file-header.js";
import { messageGuid128 } from "../dbox/guid.js";
import { readDboxMetadataForRebuild } from "../dbox/metadata.js";
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

/** A GUID written as 32 lowercase hex digits is its own key (the hex of its 128 bits). */
const GUID_HEX = /^[0-9a-f]{32}$/;

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
  for (const f of await paths.listFiles()) {
    highestFileId = Math.max(highestFileId, f.fileId);
    if (seen.has(f.fileId)) continue;
    seen.add(f.fileId);
    let bytes: Uint8Array;
    try {
      bytes = await fsp.readFile(f.path);
    } catch (err) {
      // Gone since the listing (a purge removed it): nothing to read. Other fs errors stop the rebuild.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      broken.push({ fileId: f.fileId, path: f.path, offset: 0, reason: (err as Error).message });
      continue;
    }
    let offset = 0;
    try {
      const { header, headerSize } = decodeDboxFileHeader(bytes, { path: f.path });
      offset = headerSize;
      while (offset < bytes.length) {
        const { bodyEnd } = locateDboxBody(bytes, offset, header.msgHeaderSize, { path: f.path });
        const meta = readDboxMetadataForRebuild(bytes, bodyEnd, { path: f.path });
        if (meta.guid === undefined || meta.guid === "") {
          broken.push({ fileId: f.fileId, path: f.path, offset, reason: "message is missing GUID" });
        } else {
          const guid128 = messageGuid128(meta.guid);
          messages.push({
            fileId: f.fileId, alt: f.alt, offset, size: meta.end - offset, guid: meta.guid, guid128,
            guidKey: GUID_HEX.test(meta.guid) ? meta.guid : Buffer.from(guid128).toString("hex"), receivedTime: meta.receivedTime,
            origMailbox: meta.origMailbox === undefined ? undefined : mailboxNames(meta.origMailbox),
          });
        }
        offset = meta.end;
      }
    } catch (err) {
      // The file stops making sense here: the messages before stay, the rest is reported.
      if (!(err instanceof MailCorruptedError)) throw err;
      broken.push({ fileId: f.fileId, path: f.path, offset, reason: err.message });
    }
  }
  return { messages, broken, highestFileId };
}
