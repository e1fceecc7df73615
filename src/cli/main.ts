import { Command, CommanderError } from "commander";
import { MailstoreError } from "../shared/errors.js";
import { registerDemo } from "./commands/demo.js";
import { registerDump } from "./commands/dump.js";
import { registerEvents } from "./commands/events.js";
import { registerLog } from "./commands/log.js";
import { registerImport } from "./commands/import.js";
import { registerMail } from "./commands/mail.js";
import { registerMailbox } from "./commands/mailbox.js";
import { registerMaintenance } from "./commands/maintenance.js";
import { registerReplay } from "./commands/replay.js";
import { registerWatch } from "./commands/watch.js";
import { registerReplica, registerSeed } from "./commands/replica.js";
import { addReplicationOptions } from "./replication.js";
import { processIo, type CliIo } from "./io.js";

/** Runs the `mailstore` command line; returns the exit code. Errors are one line on stderr. */
export async function main(argv: string[], io: CliIo = processIo, stop: () => Promise<void> = interrupted): Promise<number> {
  const program = new Command("mailstore")
    .description("event-sourced mail storage engine, byte-compatible with Dovecot 2.3 index files")
    .option("-l, --location <location>", "mail location, Dovecot syntax (default: $MAIL, else mdbox:./mail)")
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err });
  addReplicationOptions(program);
  // Building all ~40 commands costs ~130 KB of young heap, enough to bring on a
  // scavenge in a no-op command (~5 ms): a command line naming a verb gets that
  // verb's group alone. Help, a bare or unknown verb get every group (help lists
  // them all, commander suggests the nearest verb).
  const verb = verbNamed(program, argv);
  const named = VERB_GROUPS.find(([verbs]) => verb !== undefined && verbs.includes(verb));
  for (const [, register] of named === undefined ? VERB_GROUPS : [named]) register(program, io, stop);
  try {
    await program.parseAsync(argv, { from: "user" });
    return 0;
  } catch (err) {
    // Help and version exit 0; every parser error (unknown verb or option, a missing argument,
    // bare `mailstore`) is a usage error: 64, as doveadm's.
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EX_USAGE;
    if (err instanceof MailstoreError) {
      io.err(`mailstore: ${oneLine(err.message)}\n`);
      return exitCodeOf(err);
    }
    const e = err as NodeJS.ErrnoException;
    if (e.code && e.syscall) {
      io.err(`mailstore: ${oneLine(e.message)}\n`);
      return 66;
    }
    throw err;
  }
}

type Register = (program: Command, io: CliIo, stop: () => Promise<void>) => void;

/** Each group of verbs (top-level commands) and what registers them, in help's order. */
export const VERB_GROUPS: ReadonlyArray<readonly [verbs: readonly string[], register: Register]> = [
  [["demo"], (program, io) => registerDemo(program, io)],
  [["dump"], (program, io) => registerDump(program, io)],
  [["log"], (program, io) => registerLog(program, io)],
  [["export", "import-events"], (program, io) => registerEvents(program, io)],
  [["import"], (program, io) => registerImport(program, io)],
  [["save", "fetch", "flags", "expunge", "copy", "move"], (program, io) => registerMail(program, io)],
  [["mailbox"], (program, io) => registerMailbox(program, io)],
  [["purge", "altmove", "force-resync", "deleted"], (program, io) => registerMaintenance(program, io)],
  [["replay", "diff"], (program, io) => registerReplay(program, io)],
  [["watch"], registerWatch],
  [["replica"], registerReplica],
  [["seed"], (program, io) => registerSeed(program, io)],
];

/**
 * The verb of a command line: its first argument after the program's options
 * (`-l LOCATION`, `--location=LOCATION`, ...). Undefined where that is not plain:
 * an option the program lacks (-h), a short option with its value attached.
 */
export function verbNamed(program: Command, argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("-")) return arg;
    const option = program.options.find((o) => o.short === arg || o.long === arg || (o.long !== undefined && arg.startsWith(`${o.long}=`)));
    if (option === undefined || option.optional) return undefined;
    if (option.required && !arg.includes("=")) i++;
  }
  return undefined;
}

/** sysexits EX_USAGE. */
const EX_USAGE = 64;

/**
 * An error message as one line: a message quoting bytes from a damaged file
 * may hold line breaks and control characters, which would split it or
 * play tricks with the terminal. They are written as \n, \r, \t or \xNN.
 */
export function oneLine(text: string): string {
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => {
    if (c === "\n") return "\\n";
    if (c === "\r") return "\\r";
    if (c === "\t") return "\\t";
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`;
  });
}

/**
 * doveadm's exit codes (sysexits), so that scripts written for doveadm keep
 * working: 68 when a mailbox or message does not exist, 75 when a lock could
 * not be had in time (try again), 64 for a usage error, 65 otherwise.
 */
function exitCodeOf(err: MailstoreError): number {
  switch (err.code) {
    case "NOT_FOUND":
      return 68;
    case "LOCK_TIMEOUT":
    case "REPLICATION_FAILED":
      return 75;
    case "INVALID_ARGUMENT":
      return 64;
    default:
      return 65;
  }
}

/**
 * Resolves on SIGINT/SIGTERM, for long-running verbs (watch) to close cleanly.
 * Called only by such a verb, so that other calls of main() add no listeners.
 */
function interrupted(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => resolve();
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
  });
}
