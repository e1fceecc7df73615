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

export const processIo: CliIo = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  isTTY: Boolean(process.stdout.isTTY),
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  },
  env: process.env,
  actAsStoreOwner: (rootOf) => void actAsStoreOwner(rootOf),
};
