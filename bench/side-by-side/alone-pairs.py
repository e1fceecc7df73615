#!/usr/bin/env python3
"""Alternated A/B pairs of one *-alone.mjs step: a base build's dist against another's, the order flipped
each pair (the machine's load drifts), and the median of the pair ratios of each figure timeStep prints.

    python3 bench/side-by-side/alone-pairs.py fetch-alone.mjs <base dist> <dist> <pairs> run [run-import]

Run from the checkout whose bench/side-by-side holds the script; the store comes from the script's own
`setup`, done once before.
"""
import json
import os
import statistics
import subprocess
import sys

script, base, new, pairs, mode = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
here = os.path.dirname(os.path.abspath(__file__))


def run(dist):
    out = subprocess.run(["node", "--expose-gc", os.path.join(here, script), dist, mode], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


rows = []
for i in range(pairs):
    order = [("base", base), ("new", new)] if i % 2 == 0 else [("new", new), ("base", base)]
    r = {k: run(d) for k, d in order}
    rows.append(r)
    print(i, "base", json.dumps(r["base"]), "new", json.dumps(r["new"]), flush=True)
for key in rows[0]["base"]:
    ratios = [r["new"][key] / r["base"][key] for r in rows if r["base"][key]]
    if not ratios:
        continue
    lower = sum(1 for x in ratios if x < 1)
    print(f"{key}: base median {statistics.median(r['base'][key] for r in rows):.1f}, new median {statistics.median(r['new'][key] for r in rows):.1f}, "
          f"median pair ratio {statistics.median(ratios):.3f} (new lower in {lower} of {len(ratios)})")
