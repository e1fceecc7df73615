// The CLI bundle in two files (scripts/bundle.mjs builds them; bin/mailstore.js loads them):
// dist/cli.cjs, the core, and dist/cli-lazy.cjs, the lazy part: what a command on an mdbox
// store never runs (PART_ROOTS, PART_PACKAGES, every `await import()` of the project), with
// the modules only that uses. The part has its own code cache (dist/cli-lazy.cache) and is
// read, compiled and evaluated on first use only, so that a no-op pays for none of it
// (issue #11 goal 2b). esbuild splits only ES module output, so this builds three times:
// 1. the core with the roots replaced, to learn which files it holds;
// 2. the part, in which each import of a file the core holds becomes the core's instance
//    (`__mailstoreCore(key)`): one copy of every module, so classes and module state are shared;
// 3. the core again, now with `__mailstoreCore`; it must hold the same files as (1).
// The launcher passes each file its link as the wrapper's last parameter: the core gets
// `__mailstorePart(key)`, the part `__mailstoreCore(key)`.
import { randomUUID } from "node:crypto";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";

const PART_ROOTS = new Set([
  ...["mbox", "maildir", "sdbox"].map((d) => `dist/src/drivers/${d}/storage-backend.js`),
  // mdbox's maintenance verbs (purge, force-resync, deleted).
  ...["purge", "rebuild", "deleted"].map((m) => `dist/src/drivers/mdbox/${m}.js`),
  // What the import, dump, export, replay, log and demo verbs do (their options are in the core, for help).
  ...["convert/import", "forensics/dump", "forensics/export", "forensics/bundle", "forensics/state-diff"].map((m) => `dist/src/${m}.js`),
  ...["log-dump-format", "index-dump-format", "state-format", "log-format", "demo-messages"].map((m) => `dist/src/cli/${m}.js`),
].map((f) => path.resolve(f)));
/** Packages whose static imports lead into the part too: rxjs's Observable (with ~15 rxjs modules) only for change streams. */
const PART_PACKAGES = new Set(["rxjs/internal/Observable"]);

const SRC = path.resolve("dist/src");
const PART_FORWARDERS = "mailstore-part";
const PART_DYNAMIC = "mailstore-part-dynamic";
const PART_ENTRY = "mailstore-part-entry";
const CORE_ENTRY = "mailstore-core-entry";
const CORE_MODULE = "mailstore-core-module";
/** Ties the part to the core it was built with: the launcher refuses a pair from two builds. */
const buildId = randomUUID();
const key = (abs) => path.relative(process.cwd(), abs);

/**
 * A static import of a root: forwarders that load the part on first call or `new`
 * (Storage only constructs the backends, mailbox.ts and follow.ts Observables; a
 * forwarder has none of the class's statics and `instanceof` it is false).
 */
async function forwarders(abs) {
  const lines = [`const load = () => __mailstorePart(${JSON.stringify(key(abs))});`];
  for (const [k, v] of Object.entries(await import(pathToFileURL(abs).href))) {
    // Only functions are forwarded: an import of anything else from a root fails the build (esbuild: no such export).
    if (typeof v !== "function" || k === "default") continue;
    lines.push(`export function ${k}(...args) { const f = load().${k}; return new.target === undefined ? f(...args) : Reflect.construct(f, args); }`);
  }
  return `${lines.join("\n")}\n`;
}

/** The core's side: the roots' imports and the project's `import()`s lead into the part (`roots` gathers their files). */
function splitPoints(roots) {
  const skip = Symbol("resolving");
  return {
    name: "split-points",
    setup(b) {
      b.onResolve({ filter: /.*/ }, async (args) => {
        if (args.pluginData === skip || !args.importer.startsWith(SRC)) return undefined;
        const relative = args.path.startsWith(".");
        if (args.kind === "dynamic-import" && relative) {
          const abs = path.resolve(args.resolveDir, args.path);
          roots.add(abs);
          return { path: abs, namespace: PART_DYNAMIC };
        }
        if (args.kind !== "import-statement" || !(relative || PART_PACKAGES.has(args.path))) return undefined;
        const abs = relative ? path.resolve(args.resolveDir, args.path) : (await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: skip })).path;
        if (relative && !PART_ROOTS.has(abs)) return undefined;
        roots.add(abs);
        return { path: abs, namespace: PART_FORWARDERS };
      });
      b.onLoad({ filter: /.*/, namespace: PART_FORWARDERS }, async (args) => ({ contents: await forwarders(args.path), loader: "js" }));
      // import() of this CommonJS stub: the part is loaded when the promise's job runs.
      b.onLoad({ filter: /.*/, namespace: PART_DYNAMIC }, (args) => ({ contents: `module.exports = __mailstorePart(${JSON.stringify(key(args.path))});\n`, loader: "js" }));
    },
  };
}

/** The part's side: a file the core holds becomes the core's instance (`used` gathers them). */
function coreModules(coreFiles, used) {
  const skip = Symbol("resolving");
  return {
    name: "core-modules",
    setup(b) {
      b.onResolve({ filter: /.*/ }, async (args) => {
        if (args.pluginData === skip || args.kind === "entry-point" || args.path.startsWith("node:")) return undefined;
        const r = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: skip });
        if (r.errors.length > 0 || r.namespace !== "file" || !coreFiles.has(r.path)) return undefined;
        used.add(r.path);
        return { path: r.path, namespace: CORE_MODULE };
      });
      b.onLoad({ filter: /.*/, namespace: CORE_MODULE }, (args) => ({ contents: `module.exports = __mailstoreCore(${JSON.stringify(key(args.path))});\n`, loader: "js" }));
    },
  };
}

/** The part's entry: each root's module, evaluated when the core first asks for it, and the build id. */
function partEntry(roots) {
  return [...roots].sort().map((abs) => `exports[${JSON.stringify(key(abs))}] = () => require(${JSON.stringify(abs)});`).concat(`exports.buildId = ${JSON.stringify(buildId)};`).join("\n");
}

/**
 * The core's entry: main.js's exports, the build id, and `__mailstoreCore`, which
 * hands the part the modules it imports from the core. An ES module's exports are
 * gathered into an object only when the part asks (a namespace object made by
 * esbuild would be built at start-up): their values then, so an `export let`
 * reassigned later would not be seen (the project has none); a CommonJS module is
 * its module.exports.
 */
async function coreEntry(entry, modules, formats) {
  const imports = [];
  const cases = [];
  for (const [i, abs] of [...modules].sort().entries()) {
    if (formats.get(abs) === "cjs") {
      cases.push(`case ${JSON.stringify(key(abs))}: return require(${JSON.stringify(abs)});`);
      continue;
    }
    const names = Object.keys(await import(pathToFileURL(abs).href));
    imports.push(`import { ${names.map((n) => `${n} as m${i}_${n}`).join(", ")} } from ${JSON.stringify(abs)};`);
    cases.push(`case ${JSON.stringify(key(abs))}: return { ${names.map((n) => `${n}: m${i}_${n}`).join(", ")} };`);
  }
  return [
    `export * from ${JSON.stringify(entry)};`,
    ...imports,
    `export const buildId = ${JSON.stringify(buildId)};`,
    `export function __mailstoreCore(key) { switch (key) { ${cases.join(" ")} default: throw new Error(\`the lazy part asked the core bundle for \${key}, which it does not hold\`); } }`,
  ].join("\n");
}

/** An entry point made here: `contents` gives its source. */
const virtualEntry = (namespace, contents) => ({
  name: "entry",
  setup(b) {
    b.onResolve({ filter: /^entry$/ }, () => ({ path: "entry", namespace }));
    b.onLoad({ filter: /.*/, namespace }, async () => ({ contents: await contents(), resolveDir: process.cwd(), loader: "js" }));
  },
});

/** The files a build holds (absolute), each with its format. */
function inputs(result) {
  const files = new Map();
  for (const [k, v] of Object.entries(result.metafile.inputs)) if (!/^[a-z-]+:/.test(k)) files.set(path.resolve(k), v.format);
  return files;
}

/** Builds and fails on a warning: e.g. a name imported from a builtin that the shared module lacks (undefined at run time). */
async function checkedBuild(what, options) {
  const result = await build({ ...options, metafile: true, write: false });
  if (result.warnings.length > 0) throw new Error(`esbuild warned (${result.warnings.length}) building ${what}: see above`);
  return result;
}

/**
 * The core and the lazy part of the bundle of `entry` (their text). `options` are
 * esbuild's for both (plugins before the split's own); `banner(link)` is the
 * files' start, given the name of their last parameter.
 */
export async function buildInTwo(entry, options, banner) {
  const roots = new Set();
  const core1 = await checkedBuild("the core", { ...options, entryPoints: [entry], banner: banner("__mailstorePart"), plugins: [...options.plugins, splitPoints(roots)] });
  const coreFiles = inputs(core1);
  const used = new Set();
  const part = await checkedBuild("the lazy part", { ...options, entryPoints: ["entry"], banner: banner("__mailstoreCore"), plugins: [virtualEntry(PART_ENTRY, () => partEntry(roots)), ...options.plugins, coreModules(coreFiles, used)] });
  const core = await checkedBuild("the core", { ...options, entryPoints: ["entry"], banner: banner("__mailstorePart"), plugins: [virtualEntry(CORE_ENTRY, () => coreEntry(path.resolve(entry), used, coreFiles)), ...options.plugins, splitPoints(new Set())] });
  const again = inputs(core);
  if (again.size !== coreFiles.size || [...again.keys()].some((f) => !coreFiles.has(f))) throw new Error("the core bundle's files changed when it gained __mailstoreCore");
  for (const f of inputs(part).keys()) if (coreFiles.has(f)) throw new Error(`${key(f)} is in both the core bundle and the lazy part`);
  return { core: core.outputFiles[0].text, part: part.outputFiles[0].text };
}
