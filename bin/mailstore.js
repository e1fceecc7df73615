#!/usr/bin/env node
"use strict";
// Thin launcher (CommonJS: bin/package.json). `npm ci` (prepare) compiles to
// dist/ and bundles the CLI with its dependencies into one script,
// dist/cli.cjs (scripts/bundle.mjs; os-lock and fs-ext, native addons, and the
// NATS client stay outside, loaded on first use). It is compiled
// through vm.Script with V8's code cache, dist/cli.cache: with it, start-up
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

/** Writes the code cache beside the bundle (atomically); a read-only install keeps running without. */
function saveCache(script) {
  const tmp = `${cacheFile}.${process.pid}`;
  try {
    fs.writeFileSync(tmp, script.createCachedData(), { mode: 0o644 });
    fs.renameSync(tmp, cacheFile);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    if (err.code !== "EACCES" && err.code !== "EPERM" && err.code !== "EROFS" && err.code !== "ENOSPC") throw err;
  }
}

/**
 * The bundle's source and its code cache, read through one buffer: each page a
 * fresh process first touches costs it a fault, and the source, once a string,
 * needs its bytes no more. The bundle is pure ASCII (scripts/bundle.mjs), so a
 * latin1 string is the one V8 would make of UTF-8, without the UTF-8 decoder's
 * own copies.
 */
function readBundle() {
  const sourceFd = fs.openSync(bundle, "r");
  const cacheFd = openIfThere(cacheFile);
  try {
    const sourceSize = fs.fstatSync(sourceFd).size;
    const cacheSize = cacheFd === undefined ? 0 : fs.fstatSync(cacheFd).size;
    const bytes = Buffer.allocUnsafeSlow(Math.max(sourceSize, cacheSize));
    const source = bytes.toString("latin1", 0, readInto(sourceFd, bytes, sourceSize));
    const cachedData = cacheFd === undefined ? undefined : bytes.subarray(0, readInto(cacheFd, bytes, cacheSize));
    return { source, cachedData };
  } finally {
    fs.closeSync(sourceFd);
    if (cacheFd !== undefined) fs.closeSync(cacheFd);
  }
}

function loadBundle() {
  const { source, cachedData } = readBundle();
  // The source is CommonJS's module wrapper written out (a function expression).
  const script = new vm.Script(source, { filename: bundle, cachedData });
  const mod = { exports: {} };
  script.runInThisContext()(mod.exports, createRequire(bundle), mod, bundle, dist);
  // After the command ran, the cache also holds the functions it compiled.
  if (cachedData === undefined || script.cachedDataRejected) process.once("exit", () => saveCache(script));
  return mod.exports;
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
const cli = mtime(bundle) >= mtime(compiled) ? Promise.resolve(loadBundle()) : import(pathToFileURL(compiled).href);
cli.then((m) => m.main(process.argv.slice(2))).then((code) => {
  process.exitCode = code;
});
