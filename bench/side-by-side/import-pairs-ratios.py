"""Medians of pair ratios (new / base) of import-pairs.sh output: CPU (user+sys), wall, peak RSS."""
import statistics
import sys

rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
pairs = [rows[i:i + 2] for i in range(0, len(rows), 2)]


def side(pair, label):
    return next(r for r in pair if r[0] == label)


def ratio(col):
    if col == "cpu":
        return [(float(side(p, "new")[2]) + float(side(p, "new")[3])) / (float(side(p, "base")[2]) + float(side(p, "base")[3])) for p in pairs]
    return [float(side(p, "new")[col]) / float(side(p, "base")[col]) for p in pairs]


def mib(label):
    v = sorted(float(r[4]) / 1024 for r in rows if r[0] == label)
    return f"{v[0]:.1f}-{v[-1]:.1f} (median {statistics.median(v):.1f})"


cpu, wall, rss = ratio("cpu"), ratio(1), ratio(4)
print(f"{len(pairs)} pairs: CPU ratio {statistics.median(cpu):.3f} ({min(cpu):.3f}-{max(cpu):.3f}), wall {statistics.median(wall):.3f}, "
      f"peak RSS {statistics.median(rss):.3f}; peak RSS MiB base {mib('base')}, new {mib('new')}")
