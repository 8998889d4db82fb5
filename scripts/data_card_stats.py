#!/usr/bin/env python3
"""Print the label distribution of the training corpus (and the challenge set)
as Markdown tables, for training-data/DATA_CARD.md.

    python3 scripts/data_card_stats.py
"""
import collections
import glob
import json
import os
import statistics

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AXES = ["product", "category", "severity", "urgency", "sentiment", "channel"]


def load(paths):
    return [json.loads(l) for p in paths for l in open(p, encoding="utf-8") if l.strip()]


def table(rows, title):
    print(f"### {title}: {len(rows)} examples\n")
    lengths = [len(r["text"]) for r in rows]
    print(f"Text length (characters): median {statistics.median(lengths):.0f}, "
          f"10th percentile {sorted(lengths)[len(lengths) // 10]}, 90th {sorted(lengths)[9 * len(lengths) // 10]}, max {max(lengths)}.\n")
    for axis in AXES:
        counts = collections.Counter(r[axis] for r in rows)
        cells = ", ".join(f"{k} {v}" for k, v in counts.most_common())
        print(f"- **{axis}**: {cells}")
    print()


files = sorted(glob.glob(os.path.join(root, "training-data", "*.jsonl")))
print("| file | examples |\n|---|---|")
for f in files:
    n = sum(1 for l in open(f, encoding="utf-8") if l.strip())
    print(f"| {os.path.basename(f)} | {n} |")
print()
table(load(files), "Training corpus (all files)")
challenge = os.path.join(root, "eval", "challenge.jsonl")
if os.path.exists(challenge):
    table(load([challenge]), "Challenge set (eval/challenge.jsonl, never trained on)")
