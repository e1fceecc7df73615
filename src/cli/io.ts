import * as fs from "node:fs";
import { actAsStoreOwner } from "./store-owner.js";

/** Where the CLI writes: injectable so tests can run commands in-process. */
export interface CliIo {
  /**
   * Standard output: text, or bytes written as they are (a message's text).
   * Done with `data` when it returns: the caller may overwrite the bytes
   * (the fetch command's bodies are read through one reused buffer).
   */
  out(data: string | Uint8Array): void;
  err(text: string): void;
  isTTY: boolean;
  /** Standard input, whole (message bodies for `save`). */
  readStdin(): Promise<Buffer>;
  env: Readonly<Record<string, string | undefined>>;
  /**
   * Run as root, become the owner of the store whose root `rootOf` gives (store-owner.ts).
   * Only the real process has it: in-process callers (tests, a server
   * embedding the CLI) keep their identity.
   */
  actAsStoreOwner?(rootOf: () => string): void;
}

/** The output buffer's size: one write(2) per this much output. */
const STAGE_BYTES = 64 * 1024;

/**
 * Standard output in writes of up to 64 KiB, flushed at the latest on the
 * next turn of the event loop (a watch's line goes out at once): a fetch
 * prints several pieces per message, and each write is a syscall (20,000
 * messages: 0.36 s of 1.7 s in writes before). What is written is copied
 * into one reused buffer, so a caller may reuse its bytes once write()
 * returns: the fetch command hands over message bodies that the next
 * message's read overwrites (FetchOptions.transientBodies), and neither side
 * then touches fresh memory per message.
 */
class BufferedStdout {
  private stage: Buffer | undefined;
  private staged = 0;
  private scheduled = false;

  write(data: string | Uint8Array): void {
    const stage = (this.stage ??= Buffer.allocUnsafeSlow(STAGE_BYTES));
    // A string encoded in place when it surely fits (UTF-8: at most 3 bytes per UTF-16 unit).
    if (typeof data === "string" && data.length * 3 <= STAGE_BYTES - this.staged) this.staged += stage.write(data, this.staged, "utf8");
    else this.writeBytes(typeof data === "string" ? Buffer.from(data) : data);
    if (this.staged >= STAGE_BYTES) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private writeBytes(bytes: Uint8Array): void {
    if (bytes.length > STAGE_BYTES - this.staged) this.flush();
    // Larger than the buffer: written before write() returns, as it is.
    if (bytes.length >= STAGE_BYTES) this.writeNow(bytes);
    else {
      this.stage!.set(bytes, this.staged);
      this.staged += bytes.length;
    }
  }

  /**
   * Whether output goes through process.stdout: for a pipe or socket, which
   * Node keeps non-blocking and queues for (a direct write would fail with
   * EAGAIN whenever the reader lags), and after a direct write was refused
   * all the same; files and devices (/dev/null, a terminal) are written
   * directly.
   */
  private throughStream = !isFileOrDevice(STDOUT_FD);

  flush(): void {
    this.scheduled = false;
    if (this.staged === 0) return;
    const bytes = this.stage!.subarray(0, this.staged);
    this.staged = 0;
    this.writeNow(bytes);
  }

  /** Writes `bytes` now, or hands the stream a copy (it keeps what it queues; ours are reused). */
  private writeNow(bytes: Uint8Array): void {
    if (!this.throughStream) {
      const rest = writeGathered(STDOUT_FD, [bytes]);
      if (rest.length === 0) return;
      this.throughStream = true;
      process.stdout.write(Buffer.from(rest[0]));
      return;
    }
    process.stdout.write(Buffer.from(bytes));
  }
}

const STDOUT_FD = 1;

function isFileOrDevice(fd: number): boolean {
  let st: fs.Stats;
  try {
    st = fs.fstatSync(fd);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EBADF") return false; // stdout closed: the stream reports it
    throw err;
  }
  return st.isFile() || st.isCharacterDevice();
}

/**
 * writev(2) of `parts` to `fd` until all is written.
 * @returns what is left when the descriptor would block (EAGAIN): the caller writes that through the stream.
 */
function writeGathered(fd: number, parts: Uint8Array[]): Uint8Array[] {
  let rest = parts;
  while (rest.length > 0) {
    let written: number;
    try {
      written = fs.writevSync(fd, rest.slice(0, IOV_MAX));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EAGAIN") return rest;
      // `mailstore … | head` closed the pipe early: not an error (as the launcher's stdout handler).
      if (code === "EPIPE") process.exit(0);
      throw err;
    }
    rest = dropWritten(rest, written);
  }
  return rest;
}

/** Linux's limit on the buffers of one writev. */
const IOV_MAX = 1024;

function dropWritten(parts: Uint8Array[], bytes: number): Uint8Array[] {
  let i = 0;
  while (i < parts.length && bytes >= parts[i].length) bytes -= parts[i++].length;
  if (i === parts.length) return [];
  const out = parts.slice(i);
  out[0] = out[0].subarray(bytes);
  return out;
}

const stdout = new BufferedStdout();

export const processIo: CliIo = {
  out: (data) => stdout.write(data),
  err: (text) => {
    stdout.flush(); // what was printed before an error comes before it
    process.stderr.write(text);
  },
  // Asked when needed: process.stdout is made on first use (bin/mailstore.js).
  get isTTY() {
    return Boolean(process.stdout.isTTY);
  },
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  },
  env: process.env,
  actAsStoreOwner: (rootOf) => void actAsStoreOwner(rootOf),
};
