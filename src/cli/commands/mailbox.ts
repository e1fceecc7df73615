import type { Command } from "commander";
import { InvalidArgumentError } from "../../shared/errors.js";
import { STATUS_ITEMS, type MailboxStatus } from "../../index.js";
import { isMailboxPattern, matchMailboxes, noteUnindexedChanges, withStorage } from "../context.js";
import type { CliIo } from "../io.js";

export function registerMailbox(program: Command, io: CliIo): void {
  const mailbox = program.command("mailbox").description("create, delete, rename, list, subscribe to mailboxes, or show their status");
  mailbox.command("create").argument("<names...>").description("create mailboxes").action(async (names: string[]) => {
    await withStorage(program, io, async (storage) => { for (const name of names) await storage.createMailbox(name); });
  });
  mailbox.command("delete").argument("<names...>").description("delete mailboxes and their messages").action(async (names: string[]) => {
    await withStorage(program, io, async (storage) => { for (const name of names) await storage.deleteMailbox(name); });
  });
  mailbox.command("rename").argument("<from>").argument("<to>").description("rename a mailbox").action(async (from: string, to: string) => {
    await withStorage(program, io, (storage) => storage.renameMailbox(from, to));
  });
  mailbox
    .command("list")
    .argument("[patterns...]")
    .option("-s, --subscribed", "only subscribed mailboxes (existing or not)")
    .description("list mailboxes (patterns with * and %)")
    .action(async (patterns: string[], opts: { subscribed?: boolean }) => {
      await withStorage(program, io, async (storage) => {
        if (!opts.subscribed) {
          for (const name of matchMailboxes(withParents(await storage.listMailboxes()), patterns)) io.out(`${name}\n`);
          return;
        }
        const subscribed = await storage.listSubscriptions();
        const matched = new Set(matchMailboxes(subscribed, patterns));
        for (const name of subscribed) if (matched.has(name)) io.out(`${name}\n`);
      }, { readOnly: true });
    });
  mailbox.command("subscribe").argument("<names...>").description("subscribe to mailboxes (they need not exist)").action(async (names: string[]) => {
    await withStorage(program, io, async (storage) => { for (const name of names) await storage.subscribe(name); });
  });
  mailbox.command("unsubscribe").argument("<names...>").description("unsubscribe from mailboxes").action(async (names: string[]) => {
    await withStorage(program, io, async (storage) => { for (const name of names) await storage.unsubscribe(name); });
  });
  mailbox
    .command("status")
    .description(`mailbox status fields: ${STATUS_ITEMS.join(" ")} all`)
    .argument("<fields>", "space-separated status fields")
    .argument("<patterns...>", "mailbox names or patterns")
    .option("--json", "print a JSON array")
    .action(async (fieldList: string, patterns: string[], opts: { json?: boolean }) => {
      const asked = fieldList.split(/\s+/).filter(Boolean);
      const bad = asked.filter((f) => f !== "all" && !(STATUS_ITEMS as readonly string[]).includes(f));
      if (bad.length > 0) throw new InvalidArgumentError(`unknown status field(s): ${bad.join(" ")}`);
      const fields = STATUS_ITEMS.filter((f) => asked.includes("all") || asked.includes(f));
      const rows: Array<Record<string, string>> = [];
      await withStorage(program, io, async (storage) => {
        // Names alone need no listing, which walks the whole mailbox tree (a no-op status did only that besides its mailbox).
        const listed = patterns.some(isMailboxPattern) ? await storage.listMailboxes() : [];
        for (const name of matchMailboxes(listed, patterns)) {
          const box = await storage.openMailbox(name);
          // Refreshed by status itself, which reads no row when the fields need none.
          const status: Partial<MailboxStatus> = await box.status(fields, { refresh: true });
          noteUnindexedChanges(io, box);
          const row: Record<string, string> = { mailbox: name };
          // As doveadm prints them: no GUID is empty, an empty mailbox's first save is "never".
          for (const f of fields) row[f] = status[f] === null ? (f === "firstsaved" ? "never" : "") : String(status[f]);
          rows.push(row);
        }
      }, { readOnly: true });
      if (opts.json) io.out(JSON.stringify(rows) + "\n");
      else for (const row of rows) io.out(`${row.mailbox} ${fields.map((f) => `${f}=${row[f]}`).join(" ")}\n`);
    });
}

/**
 * What `doveadm mailbox list` shows: INBOX always (it exists once opened),
 * and the parents of nested mailboxes, which exist as hierarchy only.
 */
function withParents(names: readonly string[]): string[] {
  const all = new Set(["INBOX"]);
  for (const name of names) {
    const parts = name.split("/");
    for (let i = 1; i <= parts.length; i++) all.add(parts.slice(0, i).join("/"));
  }
  return [...all].sort((a, b) => (a === "INBOX" ? -1 : b === "INBOX" ? 1 : a < b ? -1 : a > b ? 1 : 0));
}
