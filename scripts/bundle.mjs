// Bundles the CLI into dist/cli.cjs (run by `npm run bundle`; bin/mailstore.js loads it).
// esbuild turns each `import * as fs from "node:fs"` into its own copy of the module's
// namespace (__toESM: one getter per export), made at start-up: about 110 copies, ~4 ms of
// a no-op command. Namespace imports of Node's modules go through one re-exporting module
// per builtin instead, so that each namespace is copied once.
import { build } from "esbuild";

const SHARED = "mailstore-builtin";

/** @type {import("esbuild").Plugin} */
const sharedBuiltins = {
  name: "shared-builtins",
  setup(b) {
    b.onResolve({ filter: /^node:[a-z_/]+$/ }, (args) => {
      if (args.namespace === SHARED) return { path: args.path, external: true };
      // Only the project's own ES imports: a dependency's require() must get the module itself.
      if (args.kind !== "import-statement" || args.importer.includes("node_modules")) return undefined;
      return { path: args.path, namespace: SHARED };
    });
    b.onLoad({ filter: /.*/, namespace: SHARED }, (args) => ({ contents: `export * from ${JSON.stringify(args.path)};`, loader: "js" }));
  },
};

await build({
  entryPoints: ["dist/src/cli/main.js"],
  outfile: "dist/cli.cjs",
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: "warning",
  // Native addons and the NATS client stay outside, loaded on first use.
  external: ["os-lock", "fs-ext", "nats"],
  define: { "import.meta.url": "__mailstoreImportMetaUrl" },
  banner: { js: "const __mailstoreImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  plugins: [sharedBuiltins],
});
