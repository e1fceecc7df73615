import type { Command } from "commander";
import { InvalidArgumentError } from "../../shared/errors.js";
import type { FlagAction } from "../../index.js";
import { parseFlagNames } from "../../shared/flags.js";
import { noteUnindexedChanges, withStorage } from "../context.js";
import { forEachMatch, forEachMatchRanges } from "../match.js";
import { apiFieldsOf, FETCH_FIELDS, jsonRow, printPager, pagerSeparates, rowOf } from "../fetch-format.js";
import type { CliIo } from "../io.js";
import { parseQuery } from "../query.js";

export function registerMail(program: Command, io: CliIo): void {
  program
    .command("save")
    .description("save the message on standard input")
    .option("-m, --mailbox <mailbox>", "the mailbox to save into", "INBOX")
    .action(async (opts: { mailbox: string }) => {
      const body = await io.readStdin();
      await withStorage(program, io, async (storage) => {
        const box = await storage.openMailbox(opts.mailbox);
        await box.transaction().append({ body }).commit();
      });
    });

  program
    .command("fetch")
    .description(`print fields of the messages matching QUERY (fields: ${FETCH_FIELDS.join(" ")})`)
    .argument("<fields>", "space-separated fields, e.g. 'uid flags guid'")
    .argument("<query...>", "search query, e.g. mailbox INBOX uid 1:5 seen")
    .option("--json", "print a JSON array of objects, as doveadm -f json fetch (flags as an array)")
    .action(async (fieldList: string, queryArgs: string[], opts: { json?: boolean }) => {
      const fields = fieldList.split(/\s+/).filter(Boolean);
      const unknown = fields.filter((f) => !(FETCH_FIELDS as readonly string[]).includes(f));
      if (unknown.length > 0) throw new InvalidArgumentError(`unknown fetch field(s): ${unknown.join(" ")}`);
      // Printed as fetched, so a big mailbox streams: a JSON array, or pager text with \f between messages.
      let printed = 0;
      await withStorage(program, io, (storage) => forEachMatch(storage, parseQuery(queryArgs), async (box, uids) => {
        noteUnindexedChanges(io, box);
        const known = fields as Array<(typeof FETCH_FIELDS)[number]>;
        const separates = pagerSeparates(fields);
        const out = (data: string | Uint8Array) => io.out(data);
        // The fetch's own iterator, not another async generator around it: one fewer set of promises per message.
        // Transient bodies: each message is printed (io.out copies) before the next is read over it.
        for await (const message of box.fetch(uids, apiFieldsOf(known), { transientBodies: true })) {
          const row = rowOf(box.name, message, known);
          if (opts.json) io.out((printed === 0 ? "[" : ",") + JSON.stringify(jsonRow(row)));
          else {
            if (printed > 0 && separates) io.out("\f\n");
            printPager(row, out);
          }
          printed++;
        }
      }), { readOnly: true });
      if (opts.json) io.out(printed === 0 ? "[]\n" : "]\n");
    });

  program
    .command("flags")
    .description("add, remove or replace flags and keywords of the messages matching QUERY")
    .argument("<action>", "add | remove | replace")
    .argument("<flags>", "space-separated, e.g. '\\Seen $Label1'")
    .argument("<query...>")
    .action(async (action: string, flags: string, queryArgs: string[]) => {
      if (!["add", "remove", "replace"].includes(action)) throw new InvalidArgumentError(`flags action must be add, remove or replace, not ${action}`);
      const names = flags.split(/\s+/).filter(Boolean);
      parseFlagNames(names); // refused before any mailbox is opened, as doveadm does, whether anything matches or not
      await withStorage(program, io, (storage) => forEachMatchRanges(storage, parseQuery(queryArgs), async (box, ranges) => {
        if (ranges.length > 0) await box.transaction().flags(ranges, action as FlagAction, names).commit();
      }), { existing: true });
    });

  program
    .command("expunge")
    .description("expunge the messages matching QUERY")
    .argument("<query...>")
    .action(async (queryArgs: string[]) => {
      await withStorage(program, io, (storage) => forEachMatchRanges(storage, parseQuery(queryArgs), async (box, ranges) => {
        if (ranges.length > 0) await box.transaction().expunge(ranges).commit();
      }), { existing: true });
    });

  for (const verb of ["copy", "move"] as const) {
    program
      .command(verb)
      .description(`${verb} the messages matching QUERY to DEST`)
      .argument("<dest>", "destination mailbox")
      .argument("<query...>")
      .action(async (dest: string, queryArgs: string[]) => {
        await withStorage(program, io, async (storage) => {
          const target = await storage.openMailbox(dest);
          await forEachMatchRanges(storage, parseQuery(queryArgs), async (box, ranges) => {
            if (ranges.length === 0 || box.name === target.name) return;
            if (verb === "move") await box.moveTo(target, ranges);
            else await box.transaction().copyTo(target, ranges);
          });
        }, { existing: true });
      });
  }
}
