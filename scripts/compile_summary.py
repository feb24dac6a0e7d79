"""Summarises the compile reports of scripts/bench_compile.sh as markdown (standard library
only): compile time per phase and tune mode, calibration, and the layers whose best version at
the highest contention level differs from the solo best, in both full-tune runs."""
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])


def load(name):
    return json.loads((out / f"{name}.json").read_text())


print("# Compile time and multi-versioning (2-core Zen 3 VM)\n")
print("Command: `scripts/bench_compile.sh` (full-size models from `scripts/gen_zoo.sh --full`).\n")
print("## ResNet-50 compile time by `--tune`\n")
print("| tune | candidates kept / compiled | import s | lower s | calibrate s | tune s | write s | total s |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for tune in ["none", "quick", "full"]:
    r = load(f"resnet50-{tune}")
    t = r["seconds"]
    compiled = sum(len(layer["candidates"]) for layer in r["layers"])
    print(f"| {tune} | {r['versions']} / {compiled} | {t['import']:.1f} | {t['lower']:.1f} | {t['calibrate']:.1f} "
          f"| {t['tune']:.1f} | {t['write']:.1f} | {t['total']:.1f} |")
print("\nTotals include checking every kept version against the model's test data.\n")

for model in ["resnet50", "mobilenetv2"]:
    runs = [load(f"{model}-full"), load(f"{model}-full2")]
    print(f"## {model}: best version solo vs. at the highest contention level (`--tune full`, two runs)\n")
    cal = runs[0]["calibration"]
    print("Calibration (reference: " + runs[0]["calibration_reference"] + "): "
          + ", ".join(f"level {c['level']} {c['slowdown']:.2f}x" for c in cal) + ".\n")
    keyed = [{(s["label"], s["width"]): s for s in r["switches"]} for r in runs]
    both = sorted(set(keyed[0]) & set(keyed[1]), key=lambda k: -min(keyed[0][k]["gain_under_contention"],
                                                                        keyed[1][k]["gain_under_contention"]))
    print(f"Layers with a different best version at level {runs[0]['levels']}: {len(keyed[0])} in run 1, "
          f"{len(keyed[1])} in run 2, {len(both)} in both. In both runs:\n")
    print("| layer | width | solo best slows (run 1, run 2) | contended best faster by (run 1, run 2) |")
    print("| --- | ---: | --- | --- |")
    for k in both:
        a, b = keyed[0][k], keyed[1][k]
        print(f"| {k[0]} | {k[1]} | {a['solo_best_slowdown']:.2f}x, {b['solo_best_slowdown']:.2f}x "
              f"| {a['gain_under_contention']:.2f}x, {b['gain_under_contention']:.2f}x |")
    print()
