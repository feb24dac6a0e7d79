"""Single-model latency of the full-size zoo: veltair (generated code, in-process executor via
`veltair-compile run`), onnxruntime (pinned in requirements.txt) and tract (`tract_bench`).

Batch 1 as in each model's test data; at 1 and 2 threads. The engines are interleaved: each of
`--rounds` rounds times every engine `--repeat` times in turn, and the reported figure is the
median over all timed runs of all rounds. Writes artifacts/peers.json and artifacts/peers.md.
tract runs single-threaded, so it is timed at 1 thread only.

Usage: scripts/bench_peers.sh [--models resnet50,mobilenetv2] [--threads 1,2] [--rounds 5] [--repeat 10]

With `--trace-mix MIX` it instead replays `veltair-run bench`'s multi-tenant arrival trace over
the mix against onnxruntime (see scripts/ort_replay.py) and writes artifacts/bench_ort_MIX.json:
  scripts/bench_peers.sh --trace-mix medium [--bundles target/bundles-full] [--queries 300]
      [--steps 4] [--seed 1] [--qos-factor 4] [--common-rate R]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

ROOT = Path(__file__).resolve().parent.parent
VELTAIR = ROOT / "target" / "release" / "veltair-compile"
VELTAIR_RUN = ROOT / "target" / "release" / "veltair-run"
TRACT = ROOT / "target" / "release" / "tract_bench"


def load_inputs(data_dir: Path):
    inputs = []
    for i in range(100):
        p = data_dir / f"input_{i}.pb"
        if not p.exists():
            break
        t = onnx.TensorProto()
        t.ParseFromString(p.read_bytes())
        inputs.append(numpy_helper.to_array(t))
    return inputs


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def veltair_round(model: Path, data: Path, threads: int, repeat: int):
    r = run_json([str(VELTAIR), "run", str(model), "--data", str(data), "--threads", str(threads),
                  "--repeat", str(repeat), "--warmup", "2", "--json"])
    if not all(c["ok"] for c in r["checks"]):
        raise SystemExit(f"veltair output mismatch on {model}: {r['checks']}")
    return r["runs_ms"]


def tract_round(model: Path, data: Path, repeat: int):
    return run_json([str(TRACT), str(model), "--data", str(data), "--repeat", str(repeat), "--warmup", "2"])["runs_ms"]


def ort_session(model: Path, threads: int):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])


def ort_round(sess, feeds, repeat: int):
    for _ in range(2):
        sess.run(None, feeds)
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        sess.run(None, feeds)
        runs.append((time.perf_counter() - t) * 1e3)
    return runs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="resnet50,mobilenetv2,efficientnet_b0,googlenet,tiny_yolov2,bert_base")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--out", default=str(ROOT / "artifacts" / "peers"))
    ap.add_argument("--trace-mix", help="replay veltair-run's multi-tenant trace over this mix instead")
    ap.add_argument("--bundles", default="target/bundles-full")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--qos-factor", type=float, default=4.0)
    ap.add_argument("--common-rate", type=float, help="rate of the latency replay (default: the QPS-at-QoS found)")
    args = ap.parse_args()
    if args.trace_mix:
        import ort_replay
        workload = ["--mix", args.trace_mix, "--bundles", args.bundles, "--seed", str(args.seed),
                    "--qos-factor", str(args.qos_factor)]
        out = ROOT / "artifacts" / f"bench_ort_{args.trace_mix}.json"
        ort_replay.run(VELTAIR_RUN, ROOT, workload, args.queries, args.steps, args.common_rate, out, load_inputs)
        return

    results = []
    for name in args.models.split(","):
        model = ROOT / "models" / "full" / name / "model.onnx"
        data = model.parent / "test_data_set_0"
        if not model.exists():
            raise SystemExit(f"{model} missing: run scripts/gen_zoo.sh --full first")
        sess_inputs = load_inputs(data)
        for threads in [int(t) for t in args.threads.split(",")]:
            sess = ort_session(model, threads)
            feeds = {i.name: x for i, x in zip(sess.get_inputs(), sess_inputs)}
            runs = {"veltair": [], "onnxruntime": [], "tract": []}
            errors = {}
            for rnd in range(args.rounds):
                for engine in runs:
                    if engine in errors or (engine == "tract" and threads != 1):
                        continue
                    try:
                        if engine == "veltair":
                            runs[engine] += veltair_round(model, data, threads, args.repeat)
                        elif engine == "onnxruntime":
                            runs[engine] += ort_round(sess, feeds, args.repeat)
                        else:
                            runs[engine] += tract_round(model, data, args.repeat)
                    except subprocess.CalledProcessError as e:
                        errors[engine] = (e.stderr or "").strip().splitlines()[-1:] or [str(e)]
                print(f"{name} threads={threads} round {rnd + 1}/{args.rounds}", file=sys.stderr)
            med = {k: statistics.median(v) if v else None for k, v in runs.items()}
            row = {"model": name, "threads": threads, "median_ms": med, "runs": {k: len(v) for k, v in runs.items()},
                   "errors": {k: v[0] for k, v in errors.items()}}
            if med["veltair"] and med["onnxruntime"]:
                row["veltair_over_onnxruntime"] = med["veltair"] / med["onnxruntime"]
            if med["veltair"] and med["tract"]:
                row["veltair_over_tract"] = med["veltair"] / med["tract"]
            results.append(row)
            print(json.dumps(row), file=sys.stderr)

    meta = {"command": "scripts/bench_peers.sh " + " ".join(sys.argv[1:]), "onnxruntime": ort.__version__,
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "rounds": args.rounds, "repeat": args.repeat,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    Path(args.out + ".json").write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")

    def fmt(x, unit=""):
        return "—" if x is None else f"{x:.2f}{unit}"

    lines = ["# Single-model latency: veltair vs onnxruntime vs tract", "",
             f"Command: `{meta['command']}` ({meta['date']}, {meta['cores']} cores, onnxruntime {meta['onnxruntime']}).",
             f"Batch 1; median over {args.rounds} interleaved rounds × {args.repeat} timed runs per engine.",
             "Ratios > 1 mean veltair is slower. tract is timed at 1 thread only.", "",
             "| model | threads | veltair ms | onnxruntime ms | tract ms | veltair / ORT | veltair / tract | notes |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in results:
        m = r["median_ms"]
        notes = "; ".join(f"{k}: {v}" for k, v in r["errors"].items())
        lines.append(f"| {r['model']} | {r['threads']} | {fmt(m['veltair'])} | {fmt(m['onnxruntime'])} | {fmt(m['tract'])} | "
                     f"{fmt(r.get('veltair_over_onnxruntime'), 'x')} | {fmt(r.get('veltair_over_tract'), 'x')} | {notes} |")
    Path(args.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
