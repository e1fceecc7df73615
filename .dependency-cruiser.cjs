// The import boundaries between src/ layers (README, "Architecture"):
//
//   shared ← log ← projections ← index-io ← drivers ← api ← forensics, convert, replication
//   cli → src/index.ts (the public API), forensics, shared
//
// Each rule names what a layer must NOT import, so a new folder is allowed
// until someone gives it a rule. `npm run lint:deps` runs this; `npm test`
// runs it before vitest, so a violation fails the tests.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "shared-imports-nothing",
      comment: "src/shared (errors, make-dirs, flags) is importable by every layer, so it imports none of them.",
      severity: "error",
      from: { path: "^src/shared/" },
      to: { path: "^src/", pathNot: "^src/shared/" },
    },
    {
      name: "log-imports-only-shared",
      comment: "src/log (bytes ↔ records, append, lock, follow) may import only src/shared.",
      severity: "error",
      from: { path: "^src/log/" },
      to: { path: "^src/", pathNot: "^src/(log|shared)/" },
    },
    {
      name: "projections-import-only-log-and-shared",
      comment: "src/projections are pure folds over log records: they may import src/log and src/shared.",
      severity: "error",
      from: { path: "^src/projections/" },
      to: { path: "^src/", pathNot: "^src/(projections|log|shared)/" },
    },
    {
      name: "projections-do-no-io",
      comment: "src/projections are pure: no file system, paths, processes or OS. File I/O belongs in src/index-io.",
      severity: "error",
      from: { path: "^src/projections/" },
      to: { path: "^(node:)?(fs|fs/promises|path|child_process|os)$", dependencyTypes: ["core"] },
    },
    {
      name: "index-io-imports-only-below",
      comment: "src/index-io (state loading, dovecot.index checkpoints, the index writer) may import shared, log, projections.",
      severity: "error",
      from: { path: "^src/index-io/" },
      to: { path: "^src/", pathNot: "^src/(index-io|projections|log|shared)/" },
    },
    {
      name: "drivers-import-only-below",
      comment: "src/drivers (sdbox, mdbox, maildir, mbox, dbox) may import shared, log, projections, index-io; not api, cli, forensics, convert.",
      severity: "error",
      from: { path: "^src/drivers/" },
      to: { path: "^src/", pathNot: "^src/(drivers|index-io|projections|log|shared)/" },
    },
    {
      name: "api-imports-only-below",
      comment: "src/api may import every layer below it, not forensics, convert, cli or the public entry.",
      severity: "error",
      from: { path: "^src/api/" },
      to: { path: "^src/", pathNot: "^src/(api|drivers|index-io|projections|log|shared)/" },
    },
    {
      name: "forensics-and-convert-not-cli",
      comment: "src/forensics and src/convert may import the API and below, not the CLI.",
      severity: "error",
      from: { path: "^src/(forensics|convert)/" },
      to: { path: "^src/cli/" },
    },
    {
      name: "replication-beside-convert",
      comment: "src/replication (shipping logs through NATS JetStream) uses the API and the layers below it; not forensics, convert or the CLI.",
      severity: "error",
      from: { path: "^src/replication/" },
      to: { path: "^src/(cli|forensics|convert)/|^src/index\\.ts$" },
    },
    {
      name: "below-api-no-replication",
      comment: "Only the replication entry (and the CLI through it) reach src/replication: the engine below never depends on the network.",
      severity: "error",
      from: { path: "^src/(shared|log|projections|index-io|drivers|api|forensics|convert)/" },
      to: { path: "^src/replication/" },
    },
    {
      name: "cli-uses-the-public-api",
      comment: "src/cli reaches the engine only through src/index.ts (the public API), src/replication/index.ts (its replication entry), src/forensics and src/shared.",
      severity: "error",
      from: { path: "^src/cli/" },
      to: { path: "^src/", pathNot: "^src/(cli|forensics|shared)/|^src/index\\.ts$|^src/replication/index\\.ts$" },
    },
    {
      name: "no-circular",
      comment:
        "No import cycles at run time: a cycle makes module load order (and the layers) ambiguous. " +
        "Cycles with a type-only edge are allowed: src/api/mailbox.ts ⇄ mailbox-transaction.ts, mailbox-view.ts, " +
        "mailbox-status.ts and mailbox-fetch.ts refer to each other's types (erased by tsc), as a class and its helpers do.",
      severity: "error",
      from: { path: "^src/" },
      to: { circular: true, viaOnly: { dependencyTypesNot: ["type-only"] } },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsConfig: { fileName: "tsconfig.json" },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      extensions: [".ts", ".js", ".d.ts"],
    },
  },
};
