"""Multi-tenant replay against onnxruntime, for the peer row of `veltair-run bench`.

The arrival trace and the QoS targets come from `veltair-run trace` (the same seeded Poisson
trace and targets `veltair-run bench` uses). onnxruntime gets one session per model with
intra-op threads = cores, and one worker that answers queries first come, first served (two
sessions running at once would oversubscribe the cores). The QPS-at-QoS search is the one of
`veltair-run bench`: double (or halve) from a start rate until the share of queries within QoS
crosses 99%, then bisect.
"""

import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import onnxruntime as ort

TARGET = 0.99


def veltair_trace(veltair_run: Path, workload: list, rate: float, queries: int) -> dict:
    cmd = [str(veltair_run), "trace", *workload, "--rate", str(rate), "--queries", str(queries)]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def replay(sessions: list, feeds: list, arrivals: list) -> list:
    """Replays `arrivals` in real time; returns (model, latency seconds) per query."""
    pending = queue.Queue()
    done = []

    def worker():
        while (item := pending.get()) is not None:
            model, arrival = item
            sessions[model].run(None, feeds[model])
            done.append((model, time.perf_counter() - arrival))

    thread = threading.Thread(target=worker)
    thread.start()
    t0 = time.perf_counter()
    for a in arrivals:
        due = t0 + a["at"]
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        pending.put((a["model"], due))
    pending.put(None)
    thread.join()
    return done


def within_qos(done: list, qos: list) -> float:
    return sum(1 for m, l in done if l <= qos[m]) / max(len(done), 1)


def search_rate(start: float, steps: int, met) -> float:
    """The `search_rate` of veltair-run: highest rate with `met(rate) >= TARGET`, 0 if none."""
    if met(start) >= TARGET:
        good = start
        while met(good * 2) >= TARGET:
            good *= 2
        bad = good * 2
    else:
        bad = start
        while True:
            if bad < start / 1024:
                return 0.0
            if met(bad / 2) >= TARGET:
                good = bad / 2
                break
            bad /= 2
    for _ in range(steps):
        mid = (good + bad) / 2
        if met(mid) >= TARGET:
            good = mid
        else:
            bad = mid
    return good


def nearest_rank(sorted_values: list, q: float) -> float:
    rank = min(max(int(-(-q * len(sorted_values) // 1)), 1), len(sorted_values))
    return sorted_values[rank - 1]


def run(veltair_run: Path, root: Path, workload: list, queries: int, steps: int, common_rate, out: Path, load_inputs):
    probe = veltair_trace(veltair_run, workload, 1.0, 1)
    names = [m["name"] for m in probe["models"]]
    qos = [m["qos_ms"] / 1e3 for m in probe["models"]]
    cores = os.cpu_count()
    sessions, feeds, solo = [], [], []
    for name in names:
        model = root / "models" / "full" / name / "model.onnx"
        if not model.exists():
            raise SystemExit(f"{model} missing: run scripts/gen_zoo.sh --full first")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = cores
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        feed = {i.name: x for i, x in zip(sess.get_inputs(), load_inputs(model.parent / "test_data_set_0"))}
        sess.run(None, feed)
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            sess.run(None, feed)
            runs.append(time.perf_counter() - t)
        sessions.append(sess)
        feeds.append(feed)
        solo.append(statistics.median(runs))

    def at(rate):
        return replay(sessions, feeds, veltair_trace(veltair_run, workload, rate, queries)["arrivals"])

    def met(rate):
        share = within_qos(at(rate), qos)
        print(f"  onnxruntime  {rate:9.2f} queries/s: {share * 100:5.1f}% within QoS", file=sys.stderr)
        return share

    start = 1.0 / statistics.mean(solo) / 4.0
    qps = search_rate(start, steps, met)
    rate = common_rate if common_rate else max(qps, start * 1e-3)
    latencies = sorted(l for _, l in at(rate))
    row = {"policy": "onnxruntime (FCFS)", "qps_at_qos": qps, "rate": rate, "queries": len(latencies),
           "mean_ms": statistics.mean(latencies) * 1e3, "p50_ms": nearest_rank(latencies, 0.5) * 1e3,
           "p99_ms": nearest_rank(latencies, 0.99) * 1e3}
    meta = {"command": "scripts/bench_peers.sh " + " ".join(sys.argv[1:]), "onnxruntime": ort.__version__,
            "cores": cores, "queries": queries, "steps": steps, "workload": workload,
            "models": [{"name": n, "qos_ms": q * 1e3, "ort_solo_ms": s * 1e3} for n, q, s in zip(names, qos, solo)],
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    out.write_text(json.dumps({"meta": meta, "row": row}, indent=2) + "\n")
    print(f"{'policy':<22} {'QPS@QoS':>11} {'at rate':>9} {'mean ms':>9} {'p50 ms':>9} {'p99 ms':>9}")
    print(f"{row['policy']:<22} {qps:11.1f} {rate:9.2f} {row['mean_ms']:9.2f} {row['p50_ms']:9.2f} {row['p99_ms']:9.2f}")
