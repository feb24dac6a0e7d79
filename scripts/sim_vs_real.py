"""The simulator against a measured `veltair-run bench` on this machine: replays the same mix,
seed, query count, repeats, QoS factor, policies and common rate in `veltair-run simulate` on as many
cores as the bench had, with the in-situ factors of a low-rate bench, and prints a Markdown
table of QPS-at-QoS, p99 and mean latency, measured against simulated, with the relative error.

Usage (see scripts/sim_vs_real.sh):
  sim_vs_real.py --bench artifacts/bench_medium.json --mix medium --in-situ artifacts/insitu_medium.json
                 --json artifacts/simulate2_medium.json [--bundles target/bundles-full]
"""

import argparse
import json
import subprocess
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True, help="JSON of the measured bench")
    ap.add_argument("--mix", required=True, help="the mix the bench ran")
    ap.add_argument("--in-situ", required=True, help="JSON of a low-rate bench (in-situ factors)")
    ap.add_argument("--bundles", default="target/bundles-full")
    ap.add_argument("--json", required=True, help="write the simulation's JSON here")
    args = ap.parse_args()
    with open(args.bench) as f:
        real = json.load(f)
    if real.get("simulated") is not False:
        print(f"{args.bench} is not the JSON of a measured bench", file=sys.stderr)
        return 1
    cmd = ["./target/release/veltair-run", "simulate", "--mix", args.mix, "--bundles", args.bundles,
           "--cores", str(real["cores"]), "--queries", str(real["queries"]), "--seed", str(real["seed"]),
           "--qos-factor", str(real["qos_factor"]), "--latency-rate", str(real["common_rate"]),
           "--repeats", str(real.get("repeats", 1)),
           "--in-situ", args.in_situ, "--json", args.json]
    for p in real["policies"]:
        cmd += ["--policy", p["policy"]]
    print("`" + " ".join(cmd).replace("./target/release/", "") + "`\n")
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        print(run.stdout + run.stderr, file=sys.stderr)
        return run.returncode
    with open(args.json) as f:
        sim = json.load(f)
    rows = {p["policy"]: p for p in sim["policies"]}
    print("| policy | QPS@QoS measured | simulated | error | p99 ms measured | simulated | error "
          "| mean ms measured | simulated | error |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for p in real["policies"]:
        s = rows[p["policy"]]
        cells = []
        for key in ("qps_at_qos", "p99_ms", "mean_ms"):
            cells += [f"{p[key]:.2f}", f"{s[key]:.2f}", f"{(s[key] / p[key] - 1) * 100:+.0f}%"]
        print(f"| {p['policy']} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
