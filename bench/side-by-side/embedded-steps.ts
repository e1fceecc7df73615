import * as fs from "node:fs";
import * as path from "node:path";
import { importMailboxes } from "../../src/convert/import.js";
import { openStorage, type Mailbox, type Storage } from "../../src/index.js";

/**
 * The side-by-side steps through the API in one process, as a server runs
 * the engine: storage opened once, each step timed in seconds.
 */
export class EmbeddedSteps {
  private storage: Storage;

  constructor(private readonly location: string, private readonly source: string, private readonly half: number) {
    this.storage = openStorage(location);
  }

  private async timed(fn: () => Promise<unknown>): Promise<number> {
    const t0 = process.hrtime.bigint();
    await fn();
    return Number(process.hrtime.bigint() - t0) / 1e9;
  }

  private inbox(fn: (box: Mailbox) => Promise<unknown>): Promise<number> {
    return this.timed(async () => {
      const box = await this.storage.openMailbox("INBOX");
      await fn(box);
      await box.close();
    });
  }

  import(): Promise<number> {
    return this.timed(async () => {
      const source = openStorage(this.source);
      await importMailboxes(source, this.storage);
      await source.close();
    });
  }

  /** Every message's text, read as a server streams a FETCH of them all. */
  fetchAll(): Promise<number> {
    return this.inbox(async (box) => {
      const all = { *[Symbol.iterator]() { for (let uid = 1; uid < box.state.header.nextUid; uid++) yield uid; } };
      let bytes = 0;
      // Transient bodies: a server copying each body into its own output buffer before the next (FetchOptions).
      for await (const m of box.fetch(all, ["body"], { transientBodies: true })) bytes += m.body.length;
      if (bytes === 0) throw new Error("fetch read nothing");
    });
  }

  flagAll(): Promise<number> {
    return this.inbox((box) => box.transaction().flags([{ uid1: 1, uid2: 0xffffffff }], "add", ["\\Seen"]).commit());
  }

  flagOne(uid: number): Promise<number> {
    return this.inbox((box) => box.transaction().flags([{ uid1: uid, uid2: uid }], "add", ["\\Flagged"]).commit());
  }

  expungeHalf(): Promise<number> {
    return this.inbox((box) => box.transaction().expunge([{ uid1: 1, uid2: this.half }]).commit());
  }

  purge(): Promise<number> {
    return this.timed(() => this.storage.purge());
  }

  /** A fresh storage, as a new server process would open it. */
  reopen(): Promise<number> {
    return this.timed(async () => {
      await this.storage.close();
      this.storage = openStorage(this.location);
      const box = await this.storage.openMailbox("INBOX");
      await box.refresh();
      await box.close();
    });
  }

  rebuild(): Promise<number> {
    return this.timed(async () => {
      await this.storage.close();
      this.storage = openStorage(this.location);
      await this.storage.forceResync("*");
    });
  }

  close(): Promise<void> {
    return this.storage.close();
  }
}

/** Deletes every index file (mailbox indexes and the map), keeping the m.N files. */
export function dropIndexes(root: string): void {
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.startsWith("dovecot.index") || e.name.startsWith("dovecot.map.index")) fs.rmSync(p);
    }
  };
  walk(root);
}
