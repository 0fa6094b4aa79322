#!/usr/bin/env python3
"""Draw docs/bench/ratios.png from docs/bench/results.tsv (written by bench.sh).

usage: bench_chart.py [RESULTS_TSV [OUT_PNG]]

Grouped bars per workload: mcrs / libmemcached for instructions/op (whole
program, and inside the client library's calls only), syscalls/op and ops/s, with reference lines at 1.0 (parity) and 0.35 (the
target for instructions/op). Uses matplotlib's Agg backend (no display).
"""
import csv
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DIR = os.path.join(HERE, "..", "docs", "bench")
TARGET_IR = 0.35

SERIES = [  # column, legend label, colour
    ("ir_ratio", "instructions/op, whole program (lower is better)", "#1f77b4"),
    ("lib_ir_ratio", "instructions/op inside library calls (lower is better)", "#9ecae1"),
    ("sys_ratio", "syscalls/op (lower is better)", "#ff7f0e"),
    ("ops_ratio", "ops/s (higher is better)", "#2ca02c"),
]
LABELS = {"mget100": "mget100\n(per key)", "set_noreply": "set noreply\n(buffered)"}


def num(s):
    try:
        v = float(s)
    except (TypeError, ValueError):
        return math.nan
    return v


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(DEFAULT_DIR, "results.tsv")
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(DEFAULT_DIR, "ratios.png")
    with open(src, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows:
        sys.exit("bench_chart.py: no rows in %s" % src)

    series = [s for s in SERIES if any(not math.isnan(num(r.get(s[0]))) for r in rows)]
    fig, ax = plt.subplots(figsize=(11, 6.6), dpi=120)
    n = len(series)
    width = 0.8 / max(n, 1)
    xs = range(len(rows))
    top = 1.25
    for k, (col, label, colour) in enumerate(series):
        vals = [num(r.get(col)) for r in rows]
        pos = [x - 0.4 + width * (k + 0.5) for x in xs]
        shown = [0 if math.isnan(v) else v for v in vals]
        bars = ax.bar(pos, shown, width * 0.92, label=label, color=colour, zorder=3)
        for b, v in zip(bars, vals):
            text = "n/a" if math.isnan(v) else ("%.2f" % v if v >= 0.01 else "%.3f" % v)
            ax.annotate(text, (b.get_x() + b.get_width() / 2, b.get_height()), xytext=(0, 3),
                        textcoords="offset points", ha="center", va="bottom", fontsize=9,
                        bbox=dict(facecolor="white", edgecolor="none", pad=0.6, alpha=0.85), zorder=4)
            if not math.isnan(v):
                top = max(top, v * 1.15)

    ax.axhline(1.0, color="black", linewidth=1.2, zorder=2, label="1.0 = same as libmemcached")
    ax.axhline(TARGET_IR, color="#1f77b4", linestyle="--", linewidth=1.4, zorder=2,
               label="%.2f = target for instructions/op" % TARGET_IR)
    # the lines' labels also sit in the right margin, next to the lines
    trans = ax.get_yaxis_transform()
    ax.text(1.01, 1.0, "parity\n1.0", transform=trans, va="center", ha="left", fontsize=9)
    ax.text(1.01, TARGET_IR, "instructions\ntarget\n%.2f" % TARGET_IR, transform=trans, va="center", ha="left",
            fontsize=9, color="#1f77b4")

    ax.set_xticks(list(xs))
    ax.set_xticklabels([LABELS.get(r["workload"], r["workload"]) for r in rows], fontsize=11)
    ax.set_xlim(-0.5, len(rows) - 0.5)
    ax.set_ylim(0, top)
    ax.set_ylabel("mcrs / libmemcached", fontsize=11)
    ax.set_title("mcrs relative to libmemcached, one memcached on loopback", fontsize=13)
    ax.grid(axis="y", color="#dddddd", zorder=0)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=9, frameon=False)
    fig.tight_layout()
    fig.savefig(out)
    print("wrote %s" % out)


if __name__ == "__main__":
    main()
