// Bundles the CLI into dist/cli.cjs and its lazy part dist/cli-lazy.cjs (run by `npm run bundle`;
// bin/mailstore.js loads them). Four changes to what esbuild alone makes (and warnings fail the
// build), all for start-up (a no-op command):
// - What an mdbox command never runs (the other drivers, replication, rxjs) is a second file, the
//   lazy part, read and compiled on first use only (see PART_ROOTS below).
// - Each file is one function expression, CommonJS's module wrapper written out
//   (`(function (exports, require, module, __filename, __dirname) {…})`), which the
//   launcher compiles as it is: wrapping the source at start-up made V8 flatten a
//   second 700 KB copy of it (~200 page faults). `require()` of the file would only
//   evaluate that expression. It is pure ASCII (charset), so the launcher reads it
//   as latin1: a UTF-8 read costs ~190 more page faults for the same string.
// - esbuild turns each `import * as fs from "node:fs"` into its own copy of the module's
//   namespace (__toESM: one getter per export), made at start-up: about 110 copies, ~4 ms.
//   The project's imports of Node's modules go through one module per builtin that
//   exports its properties by name (sharedModule), so that no namespace is copied.
// - LAZY builtins are loaded on the first call of one of their functions, not at start-up.
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";

const SHARED = "mailstore-builtin";
const LAZY_NS = "mailstore-lazy-builtin";
const LAZY_CJS = "mailstore-lazy-builtin-cjs";

/**
 * Builtins that no-op start-up does not need: loading them costs ~1.5–2 ms each.
 * child_process: commander's executable subcommands (unused); crypto: hashes and
 * random names when writing; v8: the import's heap bound (it loads Node's stream
 * modules, as zlib does). (node:zlib, which loads Node's ~25 stream modules,
 * ~7 ms of CPU, is loaded on first use by its one user, the mbox redo journal,
 * itself: a forwarder would make its feature check see the build's Node.) An ES import gets forwarding functions
 * (importing anything else from them fails the build; a forwarder has none of the
 * original's properties, such as util.promisify.custom; the functions are those of
 * the Node that builds the bundle, npm ci's); a require() gets a proxy of the module.
 */
const LAZY = new Set(["node:child_process", "node:crypto", "node:v8"]);

/** The module's own functions named in lower case (not its classes, constants or getters). */
function functionNames(builtin) {
  const mod = createRequire(import.meta.url)(builtin);
  return Object.keys(mod).filter((k) => /^[a-z]/.test(k) && typeof Object.getOwnPropertyDescriptor(mod, k).value === "function");
}

const loader = (builtin) => `let m;\nconst load = () => (m ??= require(${JSON.stringify(builtin)}));\n`;

function lazyModule(builtin) {
  return loader(builtin) + functionNames(builtin).map((k) => `export function ${k}(...args) { return load().${k}(...args); }\n`).join("");
}

/** A Proxy forwarding to the object `expr` evaluates to, evaluated on each use. */
function proxyOf(expr) {
  const handler = [
    `get: (_, k) => ${expr}[k]`,
    `has: (_, k) => k in ${expr}`,
    `ownKeys: () => Reflect.ownKeys(${expr})`,
    // Configurable, as the proxy's empty target does not have the property.
    `getOwnPropertyDescriptor: (_, k) => { const d = Reflect.getOwnPropertyDescriptor(${expr}, k); return d && { ...d, configurable: true }; }`,
  ];
  return `new Proxy({}, { ${handler.join(", ")} })`;
}

function lazyCjsModule(builtin) {
  return `${loader(builtin)}module.exports = ${proxyOf("load()")};\n`;
}

/**
 * The one module through which the project's ES imports reach `builtin`: its
 * properties as named exports, read once at start-up, so that esbuild turns
 * `fs.readFileSync` into a plain variable. (`export * from "node:fs"` made a
 * copy of the whole namespace at start-up instead, a getter closure and a map
 * transition per property: ~90 KB of young heap for fs and path.) A getter of
 * the module (fs.promises, fs.opendirSync: loaded on first use) is not called
 * here: a function becomes a forwarder and `promises` a proxy; the classes behind
 * getters (fs.ReadStream, fs.Dir) are not exported, so an import of one, or of
 * a default export, fails the build rather than being undefined.
 */
function sharedModule(builtin) {
  const mod = createRequire(import.meta.url)(builtin);
  const lines = [`const m = require(${JSON.stringify(builtin)});`];
  for (const k of Object.keys(mod)) {
    const d = Object.getOwnPropertyDescriptor(mod, k);
    if ("value" in d) lines.push(`export const ${k} = m.${k};`);
    else if (k === "promises") lines.push(`export const promises = ${proxyOf("m.promises")};`);
    else if (/^[a-z]/.test(k) && typeof mod[k] === "function") lines.push(`export function ${k}(...args) { return m.${k}(...args); }`);
  }
  return `${lines.join("\n")}\n`;
}

/** @type {import("esbuild").Plugin} */
const builtins = {
  name: "builtins",
  setup(b) {
    b.onResolve({ filter: /^node:[a-z0-9_/]+$/ }, (args) => {
      if (args.namespace === SHARED || args.namespace === LAZY_NS || args.namespace === LAZY_CJS) return { path: args.path, external: true };
      if (LAZY.has(args.path)) return { path: args.path, namespace: args.kind === "require-call" ? LAZY_CJS : LAZY_NS };
      // Only the project's own ES imports: a dependency's require() must get the module itself.
      if (args.kind !== "import-statement" || args.importer.includes("node_modules")) return undefined;
      return { path: args.path, namespace: SHARED };
    });
    b.onLoad({ filter: /.*/, namespace: SHARED }, (args) => {
      const name = JSON.stringify(args.path);
      return { contents: sharedModule(args.path), loader: "js" };
    });
    b.onLoad({ filter: /.*/, namespace: LAZY_NS }, (args) => ({ contents: lazyModule(args.path), loader: "js" }));
    b.onLoad({ filter: /.*/, namespace: LAZY_CJS }, (args) => ({ contents: lazyCjsModule(args.path), loader: "js" }));
  },
};


/**
 * The lazy part (dist/cli-lazy.cjs): what a command on an mdbox store never runs,
 * the other drivers' storage backends and whatever `await import()` loads
 * (replication), with the modules only they use. Its own file and code cache
 * (dist/cli-lazy.cache), compiled by the launcher on first use, so that a no-op
 * neither reads, deserializes nor evaluates it (issue #11 goal 2b). Its imports
 * of modules that the core bundle holds go to the core's (`__mailstoreCore`):
 * one instance of each module, so classes and module state are shared.
 */
const PART_ROOTS = new Set([
  ...["mbox", "maildir", "sdbox"].map((d) => `dist/src/drivers/${d}/storage-backend.js`),
  // mdbox's maintenance verbs (purge, force-resync, deleted), with the modules only they use.
  ...["purge", "rebuild", "deleted"].map((m) => `dist/src/drivers/mdbox/${m}.js`),
  // What the import, dump, export, replay, log and demo verbs do (their options are in the core, for help).
  ...["convert/import", "forensics/dump", "forensics/export", "forensics/bundle", "forensics/state-diff"].map((m) => `dist/src/${m}.js`),
  ...["log-dump-format", "index-dump-format", "state-format", "log-format", "demo-messages"].map((m) => `dist/src/cli/${m}.js`),
].map((f) => path.resolve(f)));
/** Packages whose static imports lead into the part too: rxjs's Observable (with ~15 rxjs modules) only for change streams. */
const PART_PACKAGES = new Set(["rxjs/internal/Observable"]);
const PART_FORWARDERS = "mailstore-part";
const PART_DYNAMIC = "mailstore-part-dynamic";
const PART_ENTRY = "mailstore-part-entry";
const CORE_ENTRY = "mailstore-core-entry";
const CORE_MODULE = "mailstore-core-module";
const ENTRY = path.resolve("dist/src/cli/main.js");
/** Ties the part to the core it was built with: the launcher refuses a pair from two builds. */
const buildId = randomUUID();
const key = (abs) => path.relative(process.cwd(), abs);

/**
 * A static import of a root: forwarders that load the part on first call or `new`
 * (Storage only constructs the backends, and mailbox.ts and follow.ts Observables; a
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

/** The core's side of the split: the roots' imports and the project's `import()`s lead into the part (`roots` gathers them). */
function splitPoints(roots) {
  return {
    name: "split-points",
    setup(b) {
      const skip = Symbol("resolving");
      b.onResolve({ filter: /.*/ }, async (args) => {
        if (args.pluginData === skip || !args.importer.startsWith(path.resolve("dist/src"))) return undefined;
        const relative = args.path.startsWith(".");
        if (args.kind === "dynamic-import" && relative) {
          const abs = path.resolve(args.resolveDir, args.path);
          roots.add(abs);
          return { path: abs, namespace: PART_DYNAMIC };
        }
        if (args.kind !== "import-statement" || !(relative || PART_PACKAGES.has(args.path))) return undefined;
        const abs = relative ? path.resolve(args.resolveDir, args.path) : (await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: skip })).path;
        if (!relative || PART_ROOTS.has(abs)) {
          roots.add(abs);
          return { path: abs, namespace: PART_FORWARDERS };
        }
        return undefined;
      });
      b.onLoad({ filter: /.*/, namespace: PART_FORWARDERS }, async (args) => ({ contents: await forwarders(args.path), loader: "js" }));
      // import() of this CommonJS stub: the part is loaded when the promise's job runs.
      b.onLoad({ filter: /.*/, namespace: PART_DYNAMIC }, (args) => ({ contents: `module.exports = __mailstorePart(${JSON.stringify(key(args.path))});\n`, loader: "js" }));
    },
  };
}

/** The part's side: a module the core holds becomes the core's instance (`used` gathers them). */
function coreModules(core, used) {
  const skip = Symbol("resolving");
  return {
    name: "core-modules",
    setup(b) {
      b.onLoad({ filter: /.*/, namespace: PART_ENTRY }, () => ({
        contents: [...used.roots].map((abs) => `exports[${JSON.stringify(key(abs))}] = () => require(${JSON.stringify(abs)});`).concat(`exports.buildId = ${JSON.stringify(buildId)};`).join("\n"),
        resolveDir: process.cwd(),
        loader: "js",
      }));
      b.onResolve({ filter: /.*/ }, async (args) => {
        if (args.pluginData === skip || args.kind === "entry-point" || args.path.startsWith("node:")) return undefined;
        const r = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: skip });
        if (r.errors.length > 0 || r.namespace !== "file" || !core.has(r.path)) return undefined;
        used.modules.add(r.path);
        return { path: r.path, namespace: CORE_MODULE };
      });
      b.onLoad({ filter: /.*/, namespace: CORE_MODULE }, (args) => ({ contents: `module.exports = __mailstoreCore(${JSON.stringify(key(args.path))});\n`, loader: "js" }));
    },
  };
}

/**
 * The core bundle's entry: main.js's exports, the build id, and `__mailstoreCore`,
 * which hands the part the modules it imports from the core. An ES module's exports
 * are gathered into an object only when the part asks (a namespace object made by
 * esbuild would be built at start-up): their values then, so an `export let`
 * reassigned later would not be seen (the project has none); a CommonJS module
 * is its module.exports.
 */
async function coreEntry(modules, formats) {
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
    `export * from ${JSON.stringify(ENTRY)};`,
    ...imports,
    `export const buildId = ${JSON.stringify(buildId)};`,
    `export function __mailstoreCore(key) { switch (key) { ${cases.join(" ")} default: throw new Error(\`the lazy part asked the core bundle for \${key}, which it does not hold\`); } }`,
  ].join("\n");
}

const virtualEntry = (namespace, contents) => ({
  name: "entry",
  setup(b) {
    b.onResolve({ filter: /^entry$/ }, () => ({ path: "entry", namespace }));
    if (contents !== undefined) b.onLoad({ filter: /.*/, namespace }, async () => ({ contents: await contents(), resolveDir: process.cwd(), loader: "js" }));
  },
});

const options = {
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: "warning",
  // Native addons and the NATS client stay outside, loaded on first use.
  external: ["os-lock", "fs-ext", "nats", "msgpackr"],
  define: { "import.meta.url": "__mailstoreImportMetaUrl" },
  charset: "ascii",
  footer: { js: "})" },
  metafile: true,
  write: false,
};
/** CommonJS's module wrapper written out, with the bundle's own last parameter. */
const banner = (extra) => ({ js: `(function (exports, require, module, __filename, __dirname, ${extra}) {const __mailstoreImportMetaUrl = require('node:url').pathToFileURL(__filename).href;` });

/** The files a build holds (absolute) and each one's format. */
function inputs(result) {
  const files = new Map();
  for (const [k, v] of Object.entries(result.metafile.inputs)) if (!/^[a-z-]+:/.test(k)) files.set(path.resolve(k), v.format);
  return files;
}

// A warning is a bug in the bundle: e.g. a name imported from a builtin that the shared module lacks (undefined at run time).
function checked(result, what) {
  if (result.warnings.length > 0) throw new Error(`esbuild warned (${result.warnings.length}) building ${what}: see above`);
  return result;
}

// 1. The core alone: which files it holds. 2. The part, taking those from the core.
// 3. The core again, now handing the part's imports over; it must hold the same files.
const roots = new Set();
const core1 = checked(await build({ ...options, entryPoints: [ENTRY], outfile: "dist/cli.cjs", banner: banner("__mailstorePart"), plugins: [builtins, splitPoints(roots)] }), "the core");
const coreFiles = inputs(core1);
const used = { roots, modules: new Set() };
const part = checked(await build({ ...options, entryPoints: ["entry"], outfile: "dist/cli-lazy.cjs", banner: banner("__mailstoreCore"), plugins: [virtualEntry(PART_ENTRY), builtins, coreModules(coreFiles, used)] }), "the lazy part");
const core = checked(await build({ ...options, entryPoints: ["entry"], outfile: "dist/cli.cjs", banner: banner("__mailstorePart"), plugins: [virtualEntry(CORE_ENTRY, () => coreEntry(used.modules, coreFiles)), builtins, splitPoints(new Set())] }), "the core");
const again = inputs(core);
if (again.size !== coreFiles.size || [...again.keys()].some((f) => !coreFiles.has(f))) throw new Error("the core bundle's files changed when it gained __mailstoreCore");
for (const f of inputs(part).keys()) if (coreFiles.has(f)) throw new Error(`${key(f)} is in both the core bundle and the lazy part`);
// The part first: a core is never newer than the part it expects.
fs.writeFileSync("dist/cli-lazy.cjs", part.outputFiles[0].contents);
fs.writeFileSync("dist/cli.cjs", core.outputFiles[0].contents);
