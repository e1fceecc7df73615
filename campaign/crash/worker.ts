/**
 * The crash campaign's worker process (run from dist/): works on one store
 * until the parent SIGKILLs it, mostly the operation the round aims at, with
 * saves and expunges mixed in so there is always something to work on.
 * Journals every step before it starts and after its commit returned (steps.ts).
 * It learns the store's contents from the store itself (what the last kill
 * left), so a message an interrupted step left behind is worked on too.
 * Usage: node worker.js '<WorkerConfig JSON>'; prints "ready" once set up.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { importMailboxes, openStorage, type Mailbox, type Storage } from "../../src/index.js";
import { Rng } from "../lib/rng.js";
import { CRASH_FLAG_POOL, crashBody } from "./messages.js";
import { readCrashMailbox } from "./read.js";
import { CRASH_MAILBOXES, JournalWriter, type CrashMailbox, type CrashOp, type Step } from "./steps.js";

export interface WorkerConfig {
  readonly location: string;
  readonly journalFile: string;
  readonly op: CrashOp;
  readonly seed: number;
  /** Ids this worker gives new messages start here (unique per round). */
  readonly firstId: number;
  /** Scratch directory (import sources). */
  readonly scratchDir: string;
}

/** Fewer live messages than this: save first. More: expunge first. */
const LIVE_MIN = 4;
const LIVE_MAX = 50;

type Live = Map<number, { uid: number; flags: string[] }>;

class CrashWorker {
  private readonly rng: Rng;
  private readonly journal: JournalWriter;
  private readonly live: Record<CrashMailbox, Live> = { INBOX: new Map(), Other: new Map() };
  private nextId: number;
  private imports = 0;

  constructor(private readonly cfg: WorkerConfig, private readonly storage: Storage, private readonly boxes: Record<CrashMailbox, Mailbox>) {
    this.rng = new Rng(cfg.seed);
    this.journal = new JournalWriter(cfg.journalFile);
    this.nextId = cfg.firstId;
  }

  /** Learns what the store holds (what the last kill left). */
  async start(): Promise<void> {
    for (const m of CRASH_MAILBOXES) await this.relearn(m);
  }

  private liveCount(): number {
    return this.live.INBOX.size + this.live.Other.size;
  }

  private randomFlags(): string[] {
    return CRASH_FLAG_POOL.filter(() => this.rng.chance(0.3));
  }

  /** A live message: [mailbox, id, uid]. */
  private randomLive(): [CrashMailbox, number, number] | undefined {
    const all = CRASH_MAILBOXES.flatMap((m) => [...this.live[m]].map(([id, r]) => [m, id, r.uid] as [CrashMailbox, number, number]));
    return all.length === 0 ? undefined : this.rng.pick(all);
  }

  /** Runs steps until killed. */
  async run(): Promise<never> {
    for (;;) {
      const n = this.liveCount();
      if (n < LIVE_MIN) await this.save();
      else if (n > LIVE_MAX) await this.expunge();
      else if (this.rng.chance(0.7)) await this.focused();
      else await this.rng.pick([() => this.save(), () => this.flags(), () => this.expunge()])();
    }
  }

  private async focused(): Promise<void> {
    switch (this.cfg.op) {
      case "save": return this.save();
      case "flags": return this.flags();
      case "expunge": return this.expunge();
      case "copy": return this.copy(false);
      case "move": return this.copy(true);
      case "import": return this.import();
      case "purge": return this.storageStep("purge", () => this.storage.purge());
      case "force-resync": return this.storageStep("force-resync", () => this.storage.forceResync("*"));
      case "altmove": {
        const pick = this.randomLive();
        if (!pick) return this.save();
        return this.storageStep("altmove", () => this.storage.altMove(pick[0], [pick[2]], this.rng.chance(0.6)));
      }
    }
  }

  private async step(step: Step, run: () => Promise<void>): Promise<void> {
    this.journal.intent(step);
    await run();
    this.journal.ack();
  }

  private async save(): Promise<void> {
    const mailbox: CrashMailbox = this.rng.chance(0.7) ? "INBOX" : "Other";
    const ids = Array.from({ length: 1 + this.rng.int(3) }, () => this.nextId++);
    const flags = ids.map(() => this.randomFlags());
    await this.step({ kind: "save", mailbox, ids, flags }, async () => {
      const tx = this.boxes[mailbox].transaction();
      ids.forEach((id, i) => tx.append({ body: crashBody(id), flags: flags[i] }));
      const { appendedUids } = await tx.commit();
      ids.forEach((id, i) => this.live[mailbox].set(id, { uid: appendedUids[i], flags: [...flags[i]].sort() }));
    });
  }

  private async flags(): Promise<void> {
    const pick = this.randomLive();
    if (!pick) return this.save();
    const [mailbox, id, uid] = pick;
    const flags = this.randomFlags();
    await this.step({ kind: "flags", mailbox, id, flags }, async () => {
      await this.boxes[mailbox].transaction().flags([{ uid1: uid, uid2: uid }], "replace", flags).commit();
      this.live[mailbox].get(id)!.flags = [...flags].sort();
    });
  }

  private async expunge(pick = this.randomLive()): Promise<void> {
    if (!pick) return this.save();
    const [mailbox, id, uid] = pick;
    await this.step({ kind: "expunge", mailbox, id }, async () => {
      await this.boxes[mailbox].transaction().expunge([{ uid1: uid, uid2: uid }]).commit();
      this.live[mailbox].delete(id);
    });
  }

  /** Copies or moves a message to the mailbox that does not have it yet. */
  private async copy(move: boolean): Promise<void> {
    const candidates = CRASH_MAILBOXES.flatMap((from) => {
      const to: CrashMailbox = from === "INBOX" ? "Other" : "INBOX";
      return [...this.live[from]].filter(([id]) => !this.live[to].has(id)).map(([id, r]) => ({ from, to, id, uid: r.uid }));
    });
    if (candidates.length === 0) return this.save();
    const { from, to, id, uid } = this.rng.pick(candidates);
    const uids = [{ uid1: uid, uid2: uid }];
    await this.step({ kind: move ? "move" : "copy", from, to, id }, async () => {
      const { appendedUids } = move ? await this.boxes[from].moveTo(this.boxes[to], uids) : await this.boxes[from].transaction().copyTo(this.boxes[to], uids);
      this.live[to].set(id, { uid: appendedUids[0], flags: this.live[from].get(id)!.flags });
      if (move) this.live[from].delete(id);
    });
  }

  /** Imports a small fresh sdbox store (new ids) into INBOX, in batches of two. */
  private async import(): Promise<void> {
    const dir = path.join(this.cfg.scratchDir, `import-${this.cfg.seed}-${this.imports++}`);
    fs.rmSync(dir, { recursive: true, force: true });
    const ids = Array.from({ length: 2 + this.rng.int(5) }, () => this.nextId++);
    const flags = ids.map(() => this.randomFlags());
    const source = openStorage(`sdbox:${dir}`);
    const src = await source.openMailbox("INBOX");
    const tx = src.transaction();
    ids.forEach((id, i) => tx.append({ body: crashBody(id), flags: flags[i] }));
    await tx.commit();
    await this.step({ kind: "save", mailbox: "INBOX", ids, flags }, async () => {
      await importMailboxes(source, this.storage, { mailboxes: ["INBOX"], batchMessages: 2 });
    });
    await source.close();
    fs.rmSync(dir, { recursive: true, force: true });
    // The import gave the messages UIDs this process does not know: learn them.
    await this.relearn("INBOX");
  }

  private async storageStep(what: "purge" | "altmove" | "force-resync", run: () => Promise<unknown>): Promise<void> {
    await this.step({ kind: "storage", what }, async () => {
      await run();
    });
    if (what === "force-resync") for (const m of CRASH_MAILBOXES) await this.relearn(m);
  }

  /** Re-reads `mailbox`'s id → uid from the mailbox itself. */
  private async relearn(mailbox: CrashMailbox): Promise<void> {
    const found = await readCrashMailbox(this.boxes[mailbox]);
    this.live[mailbox].clear();
    for (const m of found) if (m.id !== undefined && m.whole) this.live[mailbox].set(m.id, { uid: m.uid, flags: m.flags });
  }
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2]) as WorkerConfig;
  const storage = openStorage(cfg.location);
  const boxes = { INBOX: await storage.openMailbox("INBOX"), Other: await storage.openMailbox("Other") };
  const worker = new CrashWorker(cfg, storage, boxes);
  await worker.start();
  process.stdout.write("ready\n");
  await worker.run();
}

if (process.argv[1] && path.resolve(process.argv[1]) === new URL(import.meta.url).pathname) await main();
