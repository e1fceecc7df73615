/**
 * main.ts registers only the group of the verb a command line names (a no-op
 * command then builds ~5 commands instead of ~40): each group must name exactly
 * the verbs it registers, and help must still list every verb.
 */
import { Command } from "commander";
import { expect, it } from "vitest";
import type { CliIo } from "../../../src/cli/io.js";
import { main, VERB_GROUPS, verbNamed } from "../../../src/cli/main.js";
import { addReplicationOptions } from "../../../src/cli/replication.js";

const io: CliIo = { out: () => undefined, err: () => undefined, isTTY: false, readStdin: async () => Buffer.alloc(0), env: {} };
const stop = async (): Promise<void> => undefined;

it("each verb group registers exactly the verbs it names, and no two groups share a verb", () => {
  for (const [verbs, register] of VERB_GROUPS) {
    const program = new Command("mailstore");
    register(program, io, stop);
    expect(program.commands.map((c) => c.name()), verbs.join(" ")).toEqual(verbs);
    expect(program.commands.flatMap((c) => c.aliases())).toEqual([]);
  }
  const all = VERB_GROUPS.flatMap(([verbs]) => verbs);
  expect(new Set(all).size).toBe(all.length);
});

it("help still lists every verb", async () => {
  let out = "";
  expect(await main(["--help"], { ...io, out: (s) => void (out += String(s)) }, stop)).toBe(0);
  const listed = [...out.slice(out.indexOf("Commands:")).matchAll(/^ {2}([a-z-]+)/gm)].map((m) => m[1]);
  expect(listed).toEqual([...VERB_GROUPS.flatMap(([verbs]) => verbs), "help"]);
});

it("finds the verb after the program's options, and none where the line is not plain", () => {
  const program = new Command("mailstore").option("-l, --location <location>", "");
  addReplicationOptions(program);
  expect(verbNamed(program, ["mailbox", "status", "messages", "INBOX"])).toBe("mailbox");
  expect(verbNamed(program, ["-l", "mdbox:/m", "save", "-m", "INBOX"])).toBe("save");
  expect(verbNamed(program, ["--location=mdbox:/m", "--replicate", "nats://h:4222", "--commit-mode", "local", "fetch"])).toBe("fetch");
  expect(verbNamed(program, ["--location", "mdbox:/m", "-l", "x", "mailbox"])).toBe("mailbox");
  for (const argv of [[], ["-h", "mailbox"], ["-lmdbox:/m", "mailbox"], ["--nope", "mailbox"], ["--", "mailbox"], ["-l", "mdbox:/m"]]) expect(verbNamed(program, argv), argv.join(" ")).toBeUndefined();
});
