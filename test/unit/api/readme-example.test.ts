/**
 * The README's API example runs as written (against the compiled package,
 * as `import … from "mailstore"` resolves it), on a throwaway location.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";

const REPO = path.resolve(__dirname, "../../..");

it("the README's API example runs and exits cleanly (every handle closed)", async () => {
  const readme = fs.readFileSync(path.join(REPO, "README.md"), "utf8");
  const api = readme.slice(readme.indexOf("## API"));
  const code = /```ts\n([\s\S]*?)```/.exec(api)?.[1];
  expect(code, "a ts block under ## API").toBeDefined();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-readme-api-"));
  try {
    const script = code!
      .replace(`from "mailstore"`, `from ${JSON.stringify(path.join(REPO, "dist/src/index.js"))}`)
      .replace(/"sdbox:\/srv\/mail\/alice"/, JSON.stringify(`sdbox:${dir}/mail`));
    expect(script).toContain(dir);
    const file = path.join(dir, "example.mjs");
    fs.writeFileSync(file, `${script}\nconsole.log("done", appendedUids.join(","), changes.expunges?.length ?? 0);\n`);
    const { stdout } = await promisify(execFile)(process.execPath, [file], { timeout: 20_000 });
    expect(stdout).toMatch(/^done 1 /m);
    // The subscriber printed the append batch before unsubscribing.
    expect(stdout).toContain("append");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

it("re-running the README's API example keeps the message it just appended (issue: it used to expunge it)", async () => {
  const readme = fs.readFileSync(path.join(REPO, "README.md"), "utf8");
  const code = /```ts\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf("## API")))![1];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-readme-api-"));
  try {
    const location = JSON.stringify(`sdbox:${dir}/mail`);
    const script = code
      .replace(`from "mailstore"`, `from ${JSON.stringify(path.join(REPO, "dist/src/index.js"))}`)
      .replace(`import { openStorage }`, `import { openStorage, messageCount, recordAt }`)
      .replace(/"sdbox:\/srv\/mail\/alice"/, location);
    const report = [
      `const again = openStorage(${location});`,
      `const box = await again.openMailbox("INBOX");`,
      `const st = await box.refresh();`,
      `const held = Array.from({ length: messageCount(st) }, (_, i) => recordAt(st, i + 1).uid);`,
      `await again.close();`,
      `console.log("done", appendedUids.join(","), "held", held.join(","));`,
    ].join("\n");
    const file = path.join(dir, "example.mjs");
    fs.writeFileSync(file, `${script}\n${report}\n`);
    const run = async () => (await promisify(execFile)(process.execPath, [file], { timeout: 20_000 })).stdout;
    expect(await run()).toMatch(/^done 1 held 1$/m);
    // The second run appends UID 2, flags it, and expunges only what the first run left.
    expect(await run()).toMatch(/^done 2 held 2$/m);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
