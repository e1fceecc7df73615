import { mboxConvertBench, mboxToMdboxBench } from "./convert.bench.js";
import { mboxExpungeBench } from "./expunge.bench.js";

/**
 * `node dist/bench/mbox/run.js [NAME…]`: the mbox benchmarks on their own
 * (bench/run.ts registers the same functions).
 */
const benches: Record<string, () => Promise<string[]>> = {
  "mbox-expunge": () => mboxExpungeBench(),
  "mbox-to-maildir": () => mboxConvertBench("maildir"),
  "mbox-to-sdbox": () => mboxConvertBench("sdbox"),
  "mbox-to-mdbox": () => mboxToMdboxBench(),
};
const names = process.argv.slice(2).length > 0 ? process.argv.slice(2) : Object.keys(benches);
console.log("| benchmark | time | throughput | comparison |");
console.log("|---|---|---|---|");
for (const name of names) {
  const bench = benches[name];
  if (!bench) throw new Error(`unknown benchmark ${name}; known: ${Object.keys(benches).join(", ")}`);
  for (const row of await bench()) console.log(row);
}
