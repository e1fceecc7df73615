#!/usr/bin/env node
"use strict";
// Thin launcher (CommonJS: bin/package.json). `npm ci` (prepare) compiles to
// dist/ and bundles the CLI with its dependencies into one script,
// dist/cli.cjs, and what a command on an mdbox store never runs (the other
// drivers, mdbox's maintenance, replication, ...) into dist/cli-lazy.cjs,
// loaded on first use (scripts/bundle.mjs, bundle-split.mjs; os-lock and
// fs-ext, native addons, and the NATS client stay outside, loaded on first
// use). Each is compiled through vm.Script with
// V8's code cache, dist/cli.cache and dist/cli-lazy.cache: with it, start-up
// skips most parsing and compiling (about 18% of a no-op command's CPU).
// The cache is written after a run that had none or had it rejected (a new
// Node or bundle); where dist/ is read-only, runs go on without one. A
// bundle older than the compiled files (`tsc` run alone) is not used.
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");
const { createRequire } = require("node:module");
const { pathToFileURL } = require("node:url");

const dist = path.join(__dirname, "..", "dist");
const bundle = path.join(dist, "cli.cjs");
const cacheFile = path.join(dist, "cli.cache");

function mtime(file) {
  try {
    return fs.statSync(file).mtimeMs;
  } catch (err) {
    if (err.code === "ENOENT") return -1;
    throw err;
  }
}

function openIfThere(file) {
  try {
    return fs.openSync(file, "r");
  } catch (err) {
    if (err.code === "ENOENT") return undefined;
    throw err;
  }
}

/** Reads the file open as `fd` into the start of `bytes` (at most `sizeBytes`); returns the bytes read. */
function readInto(fd, bytes, sizeBytes) {
  let done = 0;
  for (let n = -1; done < sizeBytes && n !== 0; done += n) n = fs.readSync(fd, bytes, done, sizeBytes - done, done);
  return done;
}

/**
 * A code cache file starts with the stamp of the bundle file it was made from
 * (size, mtime, inode, as read when the process started): V8 checks a cache
 * only against the source's length, and two builds of one commit differ only
 * in their build id, so a process still running from the old build (a
 * `watch`) would otherwise leave its cache, for the old build id, in place of
 * the new one's, and every later run would refuse the pair.
 */
const STAMP_BYTES = 24;

function stampOf(st) {
  const stamp = Buffer.alloc(STAMP_BYTES);
  stamp.writeDoubleLE(st.size, 0);
  stamp.writeDoubleLE(st.mtimeMs, 8);
  stamp.writeDoubleLE(st.ino, 16);
  return stamp;
}

/** Writes `script`'s code cache to `cacheFile` (atomically), after `stamp`; a read-only install keeps running without. */
function saveCache(script, cacheFile, stamp) {
  const tmp = `${cacheFile}.${process.pid}`;
  try {
    fs.writeFileSync(tmp, Buffer.concat([stamp, script.createCachedData()]), { mode: 0o644 });
    fs.renameSync(tmp, cacheFile);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    if (err.code !== "EACCES" && err.code !== "EPERM" && err.code !== "EROFS" && err.code !== "ENOSPC") throw err;
  }
}

/**
 * A bundle file's source and its code cache, read through one buffer: each page a
 * fresh process first touches costs it a fault, and the source, once a string,
 * needs its bytes no more. The bundle is pure ASCII (scripts/bundle.mjs), so a
 * latin1 string is the one V8 would make of UTF-8, without the UTF-8 decoder's
 * own copies.
 */
function readBundle(file, cacheFile) {
  const sourceFd = fs.openSync(file, "r");
  const cacheFd = openIfThere(cacheFile);
  try {
    const sourceStat = fs.fstatSync(sourceFd);
    const stamp = stampOf(sourceStat);
    const cacheSize = cacheFd === undefined ? 0 : fs.fstatSync(cacheFd).size;
    const bytes = Buffer.allocUnsafeSlow(Math.max(sourceStat.size, cacheSize));
    const source = bytes.toString("latin1", 0, readInto(sourceFd, bytes, sourceStat.size));
    const cached = cacheFd === undefined ? undefined : bytes.subarray(0, readInto(cacheFd, bytes, cacheSize));
    // A cache made from another file (another build) is as good as none: not used, and rewritten.
    const cachedData = cached !== undefined && cached.length > STAMP_BYTES && stamp.equals(cached.subarray(0, STAMP_BYTES)) ? cached.subarray(STAMP_BYTES) : undefined;
    return { source, cachedData, stamp };
  } finally {
    fs.closeSync(sourceFd);
    if (cacheFd !== undefined) fs.closeSync(cacheFd);
  }
}

/** Runs a bundle file (dist/cli.cjs or its lazy part) with its code cache; `link` is its last parameter. */
function loadBundle(file, cacheFile, link) {
  const { source, cachedData, stamp } = readBundle(file, cacheFile);
  // The source is CommonJS's module wrapper written out (a function expression).
  const script = new vm.Script(source, { filename: file, cachedData });
  const mod = { exports: {} };
  script.runInThisContext()(mod.exports, createRequire(file), mod, file, dist, link);
  // After the command ran, the cache also holds the functions it compiled.
  if (cachedData === undefined || script.cachedDataRejected) process.once("exit", () => saveCache(script, cacheFile, stamp));
  return mod.exports;
}

/**
 * The core bundle, and the lazy part (dist/cli-lazy.cjs), loaded the first time
 * the core asks it for one of its modules (`key`, evaluated on that first ask);
 * the part takes the modules it shares with the core from the core.
 */
function loadCore() {
  let part;
  const modules = new Map();
  const core = loadBundle(bundle, cacheFile, (key) => {
    part ??= loadPart(core);
    if (!modules.has(key)) modules.set(key, part[key]());
    return modules.get(key);
  });
  return core;
}

/** The lazy part, linked to `core`; one from another build is refused. */
function loadPart(core) {
  const file = path.join(dist, "cli-lazy.cjs");
  let part;
  try {
    part = loadBundle(file, path.join(dist, "cli-lazy.cache"), core.__mailstoreCore);
  } catch (err) {
    // Without its code: the command's own handling of ENOENT (a missing mailbox) must not take this for one.
    if (err.code === "ENOENT") throw new Error(`${file} is missing: run \`npm run build\``);
    throw err;
  }
  if (part.buildId !== core.buildId) throw new Error(`${file} is not from the build of ${bundle}: run \`npm run build\``);
  return part;
}

// `mailstore … | head` closes the pipe early: that is not an error. The handler is
// added when something first asks for process.stdout, not here: making the stream
// loads Node's stream modules, which a command that prints nothing, or prints
// straight to a file or /dev/null (src/cli/io.ts), never needs.
const stdoutProperty = Object.getOwnPropertyDescriptor(process, "stdout");
Object.defineProperty(process, "stdout", {
  configurable: true,
  enumerable: stdoutProperty.enumerable,
  get() {
    Object.defineProperty(process, "stdout", stdoutProperty);
    const stream = process.stdout;
    stream.on("error", (err) => {
      if (err.code === "EPIPE") process.exit(0);
      throw err;
    });
    return stream;
  },
});

const compiled = path.join(dist, "src", "cli", "main.js");
const cli = mtime(bundle) >= mtime(compiled) ? Promise.resolve(loadCore()) : import(pathToFileURL(compiled).href);
cli.then((m) => m.main(process.argv.slice(2))).then((code) => {
  process.exitCode = code;
});
