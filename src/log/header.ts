import { LogHeaderError } from "../shared/errors.js";
import { dataViewOf } from "./bytes.js";
import {
  COMPAT_LITTLE_ENDIAN,
  LOG_HEADER_MIN_SIZE,
  LOG_HEADER_SIZE,
  LOG_MAJOR_VERSION,
  LOG_MINOR_VERSION,
  type LogFileHeader,
} from "./types.js";

/**
 * Decodes struct mail_transaction_log_header. A header shorter than 40 bytes
 * reads its missing fields as 0; a longer one is skipped up to hdr_size.
 * Throws LogHeaderError for what Dovecot would refuse to use.
 */
export function decodeLogHeader(bytes: Uint8Array, path: string): LogFileHeader {
  if (bytes.length < LOG_HEADER_MIN_SIZE) {
    throw new LogHeaderError(`log file of ${bytes.length} bytes has no complete header`, { path, offset: 0 });
  }
  const view = dataViewOf(bytes);
  const majorVersion = bytes[0];
  const minorVersion = bytes[1];
  const hdrSize = view.getUint16(2, true);
  if (majorVersion !== LOG_MAJOR_VERSION) {
    throw new LogHeaderError(`unsupported log major version ${majorVersion}`, { path, offset: 0 });
  }
  if (hdrSize < LOG_HEADER_MIN_SIZE) {
    throw new LogHeaderError(`header size ${hdrSize} is below ${LOG_HEADER_MIN_SIZE}`, { path, offset: 2 });
  }
  if (hdrSize > bytes.length) {
    throw new LogHeaderError(`header size ${hdrSize} is larger than the file (${bytes.length} bytes)`, { path, offset: 2 });
  }
  const field32 = (at: number) => (at + 4 <= hdrSize ? view.getUint32(at, true) : 0);
  const header: LogFileHeader = {
    majorVersion,
    minorVersion,
    hdrSize,
    indexId: field32(4),
    fileSeq: field32(8),
    prevFileSeq: field32(12),
    prevFileOffset: field32(16),
    createStamp: field32(20),
    initialModseq: hdrSize >= 32 ? view.getBigUint64(24, true) : 0n,
    compatFlags: hdrSize > 32 ? bytes[32] : 0,
  };
  const hasCompatFlags = minorVersion >= 2;
  if (hasCompatFlags && header.compatFlags !== COMPAT_LITTLE_ENDIAN) {
    throw new LogHeaderError(
      `compat_flags 0x${header.compatFlags.toString(16)}: written on another CPU architecture`,
      { path, offset: 32 },
    );
  }
  if (header.indexId === 0) {
    throw new LogHeaderError("indexid is 0: the log was marked corrupted", { path, offset: 4 });
  }
  return header;
}

/** Encodes a 40-byte v1.3 header, as Dovecot 2.3 writes it. */
export function encodeLogHeader(h: Omit<LogFileHeader, "majorVersion" | "minorVersion" | "hdrSize" | "compatFlags">): Uint8Array {
  const bytes = new Uint8Array(LOG_HEADER_SIZE);
  const view = dataViewOf(bytes);
  bytes[0] = LOG_MAJOR_VERSION;
  bytes[1] = LOG_MINOR_VERSION;
  view.setUint16(2, LOG_HEADER_SIZE, true);
  view.setUint32(4, h.indexId, true);
  view.setUint32(8, h.fileSeq, true);
  view.setUint32(12, h.prevFileSeq, true);
  view.setUint32(16, h.prevFileOffset, true);
  view.setUint32(20, h.createStamp, true);
  view.setBigUint64(24, h.initialModseq, true);
  bytes[32] = COMPAT_LITTLE_ENDIAN;
  return bytes;
}
