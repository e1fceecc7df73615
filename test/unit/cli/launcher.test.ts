/**
 * bin/mailstore.js: runs the bundle (dist/cli.cjs) through V8's code cache
 * (dist/cli.cache), writing the cache when it has none or V8 rejects it, and
 * falls back to the compiled modules when the bundle is older than them.
 * Runs a copy of the launcher against a stand-in dist/ so that the real one
 * is not touched while other tests use it.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";

const REPO = path.resolve(__dirname, "../../..");
let root: string;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-launcher-"));
  fs.mkdirSync(path.join(root, "bin"));
  fs.copyFileSync(path.join(REPO, "bin/mailstore.js"), path.join(root, "bin/mailstore.js"));
  fs.copyFileSync(path.join(REPO, "bin/package.json"), path.join(root, "bin/package.json"));
  fs.writeFileSync(path.join(root, "package.json"), '{ "type": "module" }\n');
  fs.mkdirSync(path.join(root, "dist/src/cli"), { recursive: true });
  fs.writeFileSync(path.join(root, "dist/src/cli/main.js"), 'export async function main(args) { process.stdout.write(`compiled ${args.join(" ")}\\n`); return 3; }\n');
  // As scripts/bundle.mjs writes it: CommonJS's module wrapper written out.
  fs.writeFileSync(path.join(root, "dist/cli.cjs"), '(function (exports, require, module, __filename, __dirname) {exports.main = async (args) => { process.stdout.write(`bundle ${args.join(" ")} ${__filename === require.resolve("./cli.cjs")}\\n`); return 4; };\n})\n');
  const later = new Date(Date.now() + 60_000);
  fs.utimesSync(path.join(root, "dist/cli.cjs"), later, later);
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

function launch(...args: string[]): { stdout: string; status: number | null } {
  const r = spawnSync(process.execPath, [path.join(root, "bin/mailstore.js"), ...args], { encoding: "utf8" });
  expect(r.stderr).toBe("");
  return { stdout: r.stdout, status: r.status };
}

it("runs the bundle, as a CommonJS module of dist/, with the command's arguments and exit code", () => {
  expect(launch("a", "b")).toEqual({ stdout: "bundle a b true\n", status: 4 });
});

it("writes the code cache after a run without one, keeps it while V8 accepts it, and replaces a rejected one", () => {
  const cache = path.join(root, "dist/cli.cache");
  launch();
  const first = fs.readFileSync(cache);
  expect(first.length).toBeGreaterThan(0);
  // Whole seconds: a millisecond time goes through utimes as a float and may come back 0.001 off.
  const old = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
  fs.utimesSync(cache, old, old);
  expect(launch("x").stdout).toBe("bundle x true\n");
  expect(fs.statSync(cache).mtimeMs).toBe(old.getTime()); // accepted: not rewritten
  fs.writeFileSync(cache, "not a code cache");
  expect(launch("y").stdout).toBe("bundle y true\n");
  expect(fs.readFileSync(cache).equals(Buffer.from("not a code cache"))).toBe(false);
  expect(fs.readdirSync(path.join(root, "dist")).sort()).toEqual(["cli.cache", "cli.cjs", "src"]); // no temporary file left
});

it("falls back to the compiled modules when the bundle is older than them (tsc run alone)", () => {
  const older = new Date(Date.now() - 120_000);
  fs.utimesSync(path.join(root, "dist/cli.cjs"), older, older);
  expect(launch("c")).toEqual({ stdout: "compiled c\n", status: 3 });
  fs.rmSync(path.join(root, "dist/cli.cjs"));
  expect(launch("d")).toEqual({ stdout: "compiled d\n", status: 3 });
});

it("loads the lazy part when the core first asks it for a module, with its own code cache, and refuses a part from another build or a missing one", () => {
  const dist = path.join(root, "dist");
  const later = new Date(Date.now() + 60_000);
  const write = (file: string, source: string): void => {
    fs.writeFileSync(path.join(dist, file), source);
    fs.utimesSync(path.join(dist, file), later, later);
  };
  // As scripts/bundle.mjs writes them: the core's last parameter asks for the part's modules, the part's for the core's.
  write("cli.cjs", '(function (exports, require, module, __filename, __dirname, __mailstorePart) {exports.buildId = "b1"; exports.__mailstoreCore = (key) => ({ name: `core ${key}` });\n'
    + 'exports.main = async (args) => { if (args[0] !== "part") return 0; let m; try { m = __mailstorePart("m"); } catch (err) { process.stderr.write(`code=${err.code} ${err.message}\\n`); return 9; }\n'
    + 'process.stdout.write(`${m.hello()} ${__mailstorePart("m") === m}\\n`); return 5; };\n})\n');
  write("cli-lazy.cjs", '(function (exports, require, module, __filename, __dirname, __mailstoreCore) {exports.buildId = "b1"; exports.m = () => ({ hello: () => `part of ${__mailstoreCore("x").name}` });\n})\n');
  expect(launch("none")).toEqual({ stdout: "", status: 0 });
  expect(fs.readdirSync(dist).sort()).toEqual(["cli-lazy.cjs", "cli.cache", "cli.cjs", "src"]); // the part not compiled
  expect(launch("part")).toEqual({ stdout: "part of core x true\n", status: 5 });
  expect(fs.readFileSync(path.join(dist, "cli-lazy.cache")).length).toBeGreaterThan(0);
  write("cli-lazy.cjs", '(function (exports, require, module, __filename, __dirname, __mailstoreCore) {exports.buildId = "b0"; exports.m = () => ({ hello: () => "stale" });\n})\n');
  const stale = spawnSync(process.execPath, [path.join(root, "bin/mailstore.js"), "part"], { encoding: "utf8" });
  expect([stale.status, stale.stderr]).toEqual([9, `code=undefined ${path.join(dist, "cli-lazy.cjs")} is not from the build of ${path.join(dist, "cli.cjs")}: run \`npm run build\`\n`]);
  // Without an error code: a command's handling of ENOENT (a missing mailbox) must not take it for one.
  fs.rmSync(path.join(dist, "cli-lazy.cjs"));
  const missing = spawnSync(process.execPath, [path.join(root, "bin/mailstore.js"), "part"], { encoding: "utf8" });
  expect([missing.status, missing.stderr]).toEqual([9, `code=undefined ${path.join(dist, "cli-lazy.cjs")} is missing: run \`npm run build\`\n`]);
});

it("does not use a code cache made from another bundle file of the same length (a rebuild of the same source: V8 checks only the length), and replaces it", () => {
  const dist = path.join(root, "dist");
  const bundleOf = (id: string) => `(function (exports, require, module, __filename, __dirname) {exports.main = async () => { process.stdout.write("${id}\\n"); return 0; };\n})\n`;
  const write = (source: string, at: Date): void => {
    fs.writeFileSync(path.join(dist, "cli.cjs"), source);
    fs.utimesSync(path.join(dist, "cli.cjs"), at, at);
  };
  const now = Math.floor(Date.now() / 1000) * 1000;
  write(bundleOf("build-1"), new Date(now + 60_000));
  expect(launch().stdout).toBe("build-1\n");
  const cache = path.join(dist, "cli.cache");
  const firstCache = fs.readFileSync(cache);
  // A process still running from build 1 saves its cache after build 2 was written (here: put back by hand).
  write(bundleOf("build-2"), new Date(now + 120_000));
  fs.writeFileSync(cache, firstCache);
  expect(launch().stdout).toBe("build-2\n"); // not build 1's code out of the old cache
  expect(fs.readFileSync(cache).equals(firstCache)).toBe(false); // and the cache now is build 2's
  expect(launch().stdout).toBe("build-2\n");
});
