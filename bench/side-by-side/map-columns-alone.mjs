// MapColumns.of alone (the purge's one walk of the map), for A/B runs of two builds:
//   node --expose-gc bench/side-by-side/purge-alone.mjs <dist> setup 20000   (once: the store)
//   node bench/side-by-side/map-columns-alone.mjs <dist>                    (that store's map: one cold walk, then 20 warm)
// Prints one JSON line; alternate two builds process by process.
import * as os from "node:os";
import * as path from "node:path";

const dist = process.argv[2];
const { loadState } = await import(path.resolve(dist, "src/index-io/load-state.js"));
const { MapColumns } = await import(path.resolve(dist, "src/projections/mdbox-map-columns.js"));
const state = loadState(path.join(os.tmpdir(), "mailstore-purge-alone", "store", "storage", "dovecot.map.index"));
const t0 = process.hrtime.bigint();
const columns = MapColumns.of(state, {});
const t1 = process.hrtime.bigint();
for (let i = 0; i < 20; i++) MapColumns.of(state, {});
const t2 = process.hrtime.bigint();
console.log(JSON.stringify({ coldMs: Number(t1 - t0) / 1e6, warm20Ms: Number(t2 - t1) / 1e6, count: columns.count }));
