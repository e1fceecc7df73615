import { actAsStoreOwner } from "./store-owner.js";

/** Where the CLI writes: injectable so tests can run commands in-process. */
export interface CliIo {
  /** Standard output: text, or bytes written as they are (a message's text). */
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

/**
 * Standard output in writes of up to 64 KiB, flushed at the latest on the
 * next turn of the event loop (a watch's line goes out at once): a fetch
 * prints several pieces per message, and each write is a syscall (20,000
 * messages: 0.36 s of 1.7 s in writes before).
 */
class BufferedStdout {
  private parts: Uint8Array[] = [];
  private size = 0;
  private scheduled = false;

  write(data: string | Uint8Array): void {
    const bytes = typeof data === "string" ? Buffer.from(data) : data;
    this.parts.push(bytes);
    this.size += bytes.length;
    if (this.size >= 64 * 1024) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.size === 0) return;
    const all = Buffer.concat(this.parts, this.size);
    this.parts = [];
    this.size = 0;
    process.stdout.write(all);
  }
}

const stdout = new BufferedStdout();

export const processIo: CliIo = {
  out: (data) => stdout.write(data),
  err: (text) => {
    stdout.flush(); // what was printed before an error comes before it
    process.stderr.write(text);
  },
  isTTY: Boolean(process.stdout.isTTY),
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  },
  env: process.env,
  actAsStoreOwner: (rootOf) => void actAsStoreOwner(rootOf),
};
