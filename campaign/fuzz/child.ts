/**
 * The fuzz campaign's subprocess (run from dist/ with a bounded heap): reads
 * one JSON request per stdin line, answers one JSON line each. What the
 * in-process run cannot see shows here: a hang (no answer in time) or a
 * crash (the process dies: a heap limit, a native fault).
 *   {"id", "kind": "parse", "target", "file", "format", "bytes": base64}
 *   {"id", "kind": "store", "location", "mailbox"}
 * → {"id", "outcome", "detail"?}
 */
import * as readline from "node:readline";
import { classify, READERS, type FuzzTarget } from "./targets.js";
import { workOnMailbox } from "./store-work.js";

export type ChildRequest =
  | { id: number; kind: "parse"; target: FuzzTarget; file: string; format: string; bytes: string }
  | { id: number; kind: "store"; location: string; mailbox: string };

const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  const req = JSON.parse(line) as ChildRequest;
  const result =
    req.kind === "parse"
      ? await classify(() => READERS[req.target](Buffer.from(req.bytes, "base64"), req.file, req.format))
      : await classify(() => workOnMailbox(req.location, req.mailbox));
  process.stdout.write(JSON.stringify({ id: req.id, outcome: result.outcome, detail: result.detail }) + "\n");
}
