#!/usr/bin/env python3
"""Run `triage eval` on the held-out split and the challenge set (engine and
both baselines) and print the Markdown tables of models/MODEL_CARD.md.

    cargo build --release && python3 scripts/model_card_tables.py
"""
import json
import os
import subprocess

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(root, "target", "release", "triage")
TARGETS = {"product": 0.90, "category": 0.85, "sentiment": 0.80, "severity": 0.75, "urgency": 0.75}


def run(data, baseline=None):
    cmd = [BIN, "eval", "--data", data, "--json"]
    if baseline:
        cmd += ["--baseline", baseline]
    return json.loads(subprocess.run(cmd, cwd=root, check=True, capture_output=True, text=True).stdout)


def axis(report, name):
    return next(a for a in report["axes"] if a["axis"] == name)


for title, data in [("Held-out split (`models/heldout.jsonl`)", "models/heldout.jsonl"),
                    ("Challenge set (`eval/challenge.jsonl`, other writers and styles)", "eval/challenge.jsonl")]:
    engine, majority, keywords = run(data), run(data, "majority"), run(data, "keywords")
    print(f"### {title}: {engine['examples']} examples\n")
    print("| axis | macro-F1 engine | target | majority | keywords | accuracy engine | within one level | ECE |")
    print("|---|---|---|---|---|---|---|---|")
    for name, target in TARGETS.items():
        e, m, k = axis(engine, name), axis(majority, name), axis(keywords, name)
        ok = "met" if e["macro_f1"] >= target else "**missed**"
        w1 = f"{e['within_one']:.3f}" if e.get("within_one") is not None else ""
        print(f"| {name} | **{e['macro_f1']:.3f}** | ≥ {target:.2f} ({ok}) | {m['macro_f1']:.3f} | {k['macro_f1']:.3f} | {e['accuracy']:.3f} | {w1} | {e['ece']:.3f} |")
    print()
    for ax, (label, r) in engine["top_level_recall"].items():
        kr = keywords["top_level_recall"][ax][1]
        print(f"- recall of {ax} `{label}`: **{r:.3f}** (target ≥ 0.90; keyword baseline {kr:.3f}, majority 0.000)")
    print(f"- routing: {engine['routing_accuracy']:.3f} of cases reach the queue their true labels route to")
    print()
    print("<details><summary>Per-class precision / recall / F1</summary>\n")
    for a in engine["axes"]:
        print(f"**{a['axis']}**\n")
        print("| label | precision | recall | F1 | support |\n|---|---|---|---|---|")
        for c in a["per_class"]:
            print(f"| {c['label']} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['support']} |")
        print()
    print("</details>\n")
