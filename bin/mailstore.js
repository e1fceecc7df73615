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

function readIfThere(file) {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    if (err.code === "ENOENT") return undefined;
    throw err;
  }
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

function loadBundle() {
  const cachedData = readIfThere(cacheFile);
  const source = fs.readFileSync(bundle, "utf8");
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: bundle, cachedData });
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
