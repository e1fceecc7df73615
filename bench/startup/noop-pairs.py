#!/usr/bin/env python3
"""The no-op command against `node -e 0`, two builds, in rounds (issue #11 goal 2b).

  env -u NODE_EXTRA_CA_CERTS python3 bench/startup/noop-pairs.py --a /work/base-x --b /work/wt-x --rounds 30

Each round runs, in an order that cycles through all six orders of the three:
`node A/bin/mailstore.js -l mdbox:EMPTY mailbox status messages Empty` (--format:
another format than mdbox), the same
with B, and `node -e 0`. Each is spawned with os.posix_spawn (stdout to
/dev/null, as the vs-dovecot bench does) and measured by os.wait4's rusage
(user + sys, minor page faults) and the wall clock. EMPTY is a store holding one
empty mailbox, made by B. Prints medians, and the medians of the rounds' ratios
B/A, A/node and B/node (CPU, wall, faults): within a round, a burst of load from
elsewhere slows all three. NODE_EXTRA_CA_CERTS, when set, makes every Node start
read and parse a CA bundle (~40-55 ms here), in both the command and `node -e 0`.
"""
import argparse
import itertools
import os
import shutil
import statistics
import sys
import tempfile
import time

NODE = shutil.which("node")


def run(argv):
    t0 = time.perf_counter()
    pid = os.posix_spawn(NODE, [NODE, *argv], dict(os.environ, MAIL=""),
                         file_actions=[(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)])
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        sys.exit(f"node {' '.join(argv)}: exit status {status}")
    return {"cpu": (ru.ru_utime + ru.ru_stime) * 1e3, "wall": wall * 1e3, "faults": ru.ru_minflt}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", required=True, help="checkout A (the base build)")
    p.add_argument("--b", required=True, help="checkout B (the build measured against A)")
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--format", default="mdbox", help="the empty store's format (mdbox, sdbox, maildir, mbox)")
    opts = p.parse_args()
    work = tempfile.mkdtemp(prefix="noop-pairs-")
    try:
        store = f"{opts.format}:{work}/empty"
        cmd = ["-l", store, "mailbox", "status", "messages", "Empty"]
        run([os.path.join(opts.b, "bin", "mailstore.js"), "-l", store, "mailbox", "create", "Empty"])
        sides = {"a": [os.path.join(opts.a, "bin", "mailstore.js"), *cmd],
                 "b": [os.path.join(opts.b, "bin", "mailstore.js"), *cmd],
                 "node": ["-e", "0"]}
        orders = list(itertools.permutations(sides))
        res = {k: [] for k in sides}
        print(f"load: {os.getloadavg()}", file=sys.stderr)
        for i in range(opts.rounds + 1):  # the first round warms the page cache, not counted
            for side in orders[i % len(orders)]:
                r = run(sides[side])
                if i > 0:
                    res[side].append(r)
        print(f"load: {os.getloadavg()}", file=sys.stderr)
        print(f"| measure | A | B | node -e 0 | B/A | A/node | B/node |  ({opts.rounds} rounds)")
        print("|---|---|---|---|---|---|---|")
        for m in ("cpu", "wall", "faults"):
            med = {k: statistics.median(r[m] for r in v) for k, v in res.items()}
            ratio = lambda x, y: statistics.median(p[m] / q[m] for p, q in zip(res[x], res[y]))
            unit = "" if m == "faults" else " ms"
            print(f"| {m} | {med['a']:.1f}{unit} | {med['b']:.1f}{unit} | {med['node']:.1f}{unit} | "
                  f"{ratio('b', 'a'):.3f} | {ratio('a', 'node'):.3f} | {ratio('b', 'node'):.3f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
