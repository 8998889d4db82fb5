#!/usr/bin/env python3
"""Write a re-scoring backlog of N lines by cycling through the corpus texts
(ids made unique), for the `triage rescore` throughput run.

    python3 scripts/make_backlog.py 200000 /tmp/backlog.jsonl
"""
import glob
import json
import os
import sys

n, out = int(sys.argv[1]), sys.argv[2]
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
rows = [json.loads(l) for f in sorted(glob.glob(os.path.join(root, "training-data", "*.jsonl"))) for l in open(f, encoding="utf-8") if l.strip()]
with open(out, "w", encoding="utf-8") as f:
    for i in range(n):
        r = rows[i % len(rows)]
        f.write(json.dumps({"id": f"b{i:07d}", "text": r["text"], "channel": r.get("channel")}, ensure_ascii=False) + "\n")
print(f"wrote {n} lines to {out}")
