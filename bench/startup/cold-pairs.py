#!/usr/bin/env python3
"""Whole-process CPU of short mailstore commands, two builds in alternated pairs.

  python3 bench/startup/cold-pairs.py --a /work/base-x --b /work/wt-x --pairs 20 \
      --cmd 'flags add \\Flagged mailbox INBOX uid 10001' \
      --cmd 'mailbox status messages uidnext highestmodseq INBOX'

Each run is `node CHECKOUT/bin/mailstore.js -l mdbox:COPY ARGS`, spawned with
os.posix_spawn (stdout to /dev/null, as the vs-dovecot bench does) and timed by
os.wait4's rusage (user + sys) and the wall clock. COPY is a fresh copy of a
store made by `mailstore import` (checkout B's build) of the bench's mbox
(bench/dovecot.ts writeSampleMbox, --messages of 2250 bytes): m.N files
hard-linked, index files copied; every file copied for a command with its own
prep (below; purge may append to the newest m.N: time it only that way). The
store is re-imported when it is more than 240 s old: past 300 s, Dovecot's
rotation rule would rotate the log at the next write and a flag command would
also rewrite dovecot.index. The no-op
(`mailbox status messages Empty` on a store holding one empty mailbox) is
always measured too. Each pair runs A then B, the next B then A.
A --cmd of the form 'PREP ;; CMD' runs PREP (untimed, B's build) on each copy
before CMD; PREP `drop-indexes` deletes dovecot.index* and dovecot.map.index*
(as bench/side-by-side's rebuild step), e.g.
  --cmd 'expunge mailbox INBOX uid 1:10000 ;; purge' --cmd 'drop-indexes ;; force-resync *'
Prints, per command: medians of A and B (ms of CPU, wall, and minor page faults,
ru_minflt: steadier than time on a shared machine) and the median of the pairs'
B/A CPU ratios. The machine's environment may set NODE_EXTRA_CA_CERTS, which
makes every Node start read and parse a CA bundle (~55 ms of CPU here); run the
harness under `env -u NODE_EXTRA_CA_CERTS` to keep that out of both sides.
"""
import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

NODE = shutil.which("node")


def run(checkout, location, args):
    bin_path = os.path.join(checkout, "bin", "mailstore.js")
    argv = [NODE, bin_path, "-l", location, *args]
    t0 = time.perf_counter()
    pid = os.posix_spawn(NODE, argv, dict(os.environ, MAIL=""),
                         file_actions=[(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)])
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        sys.exit(f"{' '.join(shlex.quote(a) for a in argv)}: exit status {status}")
    return ru.ru_utime + ru.ru_stime, wall, ru.ru_minflt


def copy_store(src, dst, link=True):
    """m.N and u.N hard-linked (never written by the commands timed here) when `link`, the rest copied."""
    for root, dirs, files in os.walk(src):
        rel = os.path.relpath(root, src)
        target = os.path.join(dst, rel)
        os.makedirs(target, exist_ok=True)
        shutil.copymode(root, target)
        for f in files:
            s, d = os.path.join(root, f), os.path.join(target, f)
            if link and f.startswith(("m.", "u.")) and f[2:].isdigit():
                os.link(s, d)
            else:
                shutil.copy2(s, d)


class Fixture:
    def __init__(self, work, checkout, messages):
        self.work, self.checkout = work, checkout
        mbox_dir = os.path.join(work, "src")
        os.makedirs(os.path.join(mbox_dir, "mail"))
        self.inbox = os.path.join(mbox_dir, "inbox")
        gen = ("const m = await import(process.argv[1]);"
               f"m.writeSampleMbox(process.argv[2], {messages}, 2250);")
        subprocess.run([NODE, "--input-type=module", "-e", gen,
                        os.path.join(checkout, "dist", "bench", "dovecot.js"), self.inbox], check=True)
        self.source = f"mbox:{mbox_dir}/mail:INBOX={self.inbox}"
        self.empty = os.path.join(work, "empty")
        run(checkout, f"mdbox:{self.empty}", ["mailbox", "create", "Empty"])
        self.store = None
        self.made = 0.0
        self.copies = 0

    def fresh(self):
        if self.store is None or time.time() - self.made > 240:
            if self.store is not None:
                shutil.rmtree(self.store)
            self.store = os.path.join(self.work, f"store-{int(time.time())}")
            run(self.checkout, f"mdbox:{self.store}", ["import", self.source])
            self.made = time.time()

    def copy(self, noop, link=True):
        self.copies += 1
        dst = os.path.join(self.work, f"copy-{self.copies}")
        copy_store(self.empty if noop else self.store, dst, link)
        return dst


def drop_indexes(root):
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.startswith(("dovecot.index", "dovecot.map.index")):
                os.remove(os.path.join(dirpath, f))


def parse_cmd(command):
    """'PREP ;; CMD' or 'CMD': (name, prep args or None, args)."""
    prep, sep, cmd = command.rpartition(";;")
    return command.strip(), split_args(prep) if sep else None, split_args(cmd)


def split_args(command):
    """Shell-like splitting that keeps backslashes: `\\Seen` is the system flag, not a keyword `Seen`."""
    lex = shlex.shlex(command, posix=True)
    lex.whitespace_split = True
    lex.escape = ""
    return list(lex)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", required=True, help="checkout A (the base build)")
    p.add_argument("--b", required=True, help="checkout B (the build measured against A)")
    p.add_argument("--pairs", type=int, default=20)
    p.add_argument("--messages", type=int, default=20000)
    p.add_argument("--cmd", action="append", default=[], help="a command's arguments, shell-quoted")
    p.add_argument("--prep", default=None, help="a command run (not timed, B's build) on each copy before the timed one")
    opts = p.parse_args()
    opts.a, opts.b = os.path.abspath(opts.a), os.path.abspath(opts.b)
    cmds = [("no-op", None, ["mailbox", "status", "messages", "Empty"])] + [parse_cmd(c) for c in opts.cmd]
    work = tempfile.mkdtemp(prefix="cold-pairs-")
    try:
        fx = Fixture(work, opts.b, opts.messages)
        res = {name: {"a": [], "b": [], "wa": [], "wb": [], "fa": [], "fb": []} for name, _, _ in cmds}
        print(f"load: {os.getloadavg()}", file=sys.stderr)
        for i in range(opts.pairs + 1):  # the first round warms the page cache, not counted
            for name, own_prep, args in cmds:
                noop = name == "no-op"
                order = ("a", "b") if i % 2 == 0 else ("b", "a")
                for side in order:
                    fx.fresh()
                    dst = fx.copy(noop, link=own_prep is None)
                    loc = f"mdbox:{dst}"
                    if opts.prep and not noop:
                        run(opts.b, loc, shlex.split(opts.prep))
                    if own_prep == ["drop-indexes"]:
                        drop_indexes(dst)
                    elif own_prep:
                        run(opts.b, loc, own_prep)
                    cpu, wall, faults = run(opts.a if side == "a" else opts.b, loc, args)
                    shutil.rmtree(dst)
                    if i > 0:
                        res[name][side].append(cpu)
                        res[name]["w" + side].append(wall)
                        res[name]["f" + side].append(faults)
        print(f"load: {os.getloadavg()}", file=sys.stderr)
        print("| command | A cpu ms | B cpu ms | B/A (median of pair ratios) | A wall ms | B wall ms | A page faults | B page faults |")
        print("|---|---|---|---|---|---|---|---|")
        for name, _, _ in cmds:
            r = res[name]
            ratio = statistics.median(b / a for a, b in zip(r["a"], r["b"]))
            print(f"| {name} | {statistics.median(r['a'])*1e3:.1f} | {statistics.median(r['b'])*1e3:.1f} | "
                  f"{ratio:.3f} | {statistics.median(r['wa'])*1e3:.1f} | {statistics.median(r['wb'])*1e3:.1f} | "
                  f"{statistics.median(r['fa']):.0f} | {statistics.median(r['fb']):.0f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
