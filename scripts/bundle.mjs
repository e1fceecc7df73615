// Bundles the CLI into dist/cli.cjs and its lazy part dist/cli-lazy.cjs (run by `npm run bundle`;
// bin/mailstore.js loads them). Four changes to what esbuild alone makes (and warnings fail the
// build), all for start-up (a no-op command):
// - What an mdbox command never runs (the other drivers, mdbox's maintenance, replication,
//   rxjs, ...) is a second file, the lazy part, read and compiled on first use only
//   (scripts/bundle-split.mjs).
// - Each file is one function expression, CommonJS's module wrapper written out
//   (`(function (exports, require, module, __filename, __dirname, link) {…})`), which the
//   launcher compiles as it is: wrapping the source at start-up made V8 flatten a
//   second 700 KB copy of it (~200 page faults). `require()` of the file would only
//   evaluate that expression. It is pure ASCII (charset), so the launcher reads it
//   as latin1: a UTF-8 read costs ~190 more page faults for the same string.
// - esbuild turns each `import * as fs from "node:fs"` into its own copy of the module's
//   namespace (__toESM: one getter per export), made at start-up: about 110 copies, ~4 ms.
//   The project's imports of Node's modules go through one module per builtin that
//   exports its properties by name (sharedModule), so that no namespace is copied.
// - LAZY builtins are loaded on the first call of one of their functions, not at start-up.
import * as fs from "node:fs";
import { createRequire } from "node:module";
import { buildInTwo } from "./bundle-split.mjs";

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
  plugins: [builtins],
};
/** CommonJS's module wrapper written out, with the file's own last parameter (scripts/bundle-split.mjs). */
const banner = (link) => ({ js: `(function (exports, require, module, __filename, __dirname, ${link}) {const __mailstoreImportMetaUrl = require('node:url').pathToFileURL(__filename).href;` });

const { core, part } = await buildInTwo("dist/src/cli/main.js", options, banner);
// The part first: a core is never newer than the part it expects.
fs.writeFileSync("dist/cli-lazy.cjs", part);
fs.writeFileSync("dist/cli.cjs", core);
