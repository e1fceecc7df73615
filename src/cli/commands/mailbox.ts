import type { Command } from "commander";
import { InvalidArgumentError } from "../../shared/errors.js";
import type { Mailbox } from "../../api/mailbox.js";
import { getHeader, highestModseq, messageCount, recentCount, uidAt } from "../../projections/read.js";
import { searchUids, FLAG_KEYS } from "../../api/search.js";
import { matchMailboxes, withStorage } from "../context.js";
import { virtualSize } from "../fetch-format.js";
import type { CliIo } from "../io.js";

/**
 * doveadm's status fields, in the order it prints them whatever order they
 * were asked in (`all` is every one of them).
 */
const STATUS_FIELDS = ["messages", "recent", "uidnext", "uidvalidity", "unseen", "highestmodseq", "vsize", "guid", "firstsaved"] as const;
type StatusField = (typeof STATUS_FIELDS)[number];

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
      });
    });
  mailbox.command("subscribe").argument("<names...>").description("subscribe to mailboxes (they need not exist)").action(async (names: string[]) => {
    await withStorage(program, io, async (storage) => { for (const name of names) await storage.subscribe(name); });
  });
  mailbox.command("unsubscribe").argument("<names...>").description("unsubscribe from mailboxes").action(async (names: string[]) => {
    await withStorage(program, io, async (storage) => { for (const name of names) await storage.unsubscribe(name); });
  });
  mailbox
    .command("status")
    .description(`mailbox status fields: ${STATUS_FIELDS.join(" ")} all`)
    .argument("<fields>", "space-separated status fields")
    .argument("<patterns...>", "mailbox names or patterns")
    .option("--json", "print a JSON array")
    .action(async (fieldList: string, patterns: string[], opts: { json?: boolean }) => {
      const asked = fieldList.split(/\s+/).filter(Boolean);
      const bad = asked.filter((f) => f !== "all" && !(STATUS_FIELDS as readonly string[]).includes(f));
      if (bad.length > 0) throw new InvalidArgumentError(`unknown status field(s): ${bad.join(" ")}`);
      const fields = STATUS_FIELDS.filter((f) => asked.includes("all") || asked.includes(f));
      const rows: Array<Record<string, string>> = [];
      await withStorage(program, io, async (storage) => {
        for (const name of matchMailboxes(await storage.listMailboxes(), patterns)) {
          const box = await storage.openMailbox(name);
          await box.refresh();
          const row: Record<string, string> = { mailbox: name };
          for (const f of fields) row[f] = await statusValue(box, f);
          rows.push(row);
        }
      });
      if (opts.json) io.out(JSON.stringify(rows) + "\n");
      else for (const row of rows) io.out(`${row.mailbox} ${fields.map((f) => `${f}=${row[f]}`).join(" ")}\n`);
    });
}

/** One `doveadm mailbox status` field of an open, refreshed mailbox, as doveadm prints it. */
async function statusValue(box: Mailbox, field: StatusField): Promise<string> {
  const state = box.state;
  switch (field) {
    case "messages": return String(messageCount(state));
    case "recent": return String(recentCount(state));
    case "uidnext": return String(getHeader(state).nextUid);
    case "uidvalidity": return String(getHeader(state).uidValidity);
    case "unseen": return String(searchUids(state, [{ type: "flag", ...FLAG_KEYS.unseen }]).length);
    case "highestmodseq": return String(highestModseq(state));
    case "vsize": {
      // Dovecot's STATUS vsize: the sum of the messages' virtual (CRLF) sizes.
      let sum = 0;
      for (let seq = 1; seq <= messageCount(state); seq++) sum += await virtualSize(box, uidAt(state, seq));
      return String(sum);
    }
    case "guid": return box.guid() ?? "";
    case "firstsaved":
      // index_mailbox_get_first_save_date: the save date of the first message; "never" when empty.
      return messageCount(state) === 0 ? "never" : String((await box.backend.messageInfo(state, uidAt(state, 1))).savedTime);
  }
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
