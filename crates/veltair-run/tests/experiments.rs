//! `veltair-run simulate` and `trace` on bundles of two zoo models (untuned: the profiles use
//! the nominal latency model): the comparison's JSON holds every policy with a rate found and
//! latency columns from one common rate; the trace is the seeded Poisson trace with the stated
//! targets; bad arguments give exit status 2 with a message.

mod zoo_support;

use serde_json::Value;
use std::process::{Command, Output};
use veltair_tests::small_zoo;
use zoo_support::{bundle, scratch};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veltair-run")).args(args).output().expect("the binary runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// `--model` arguments for bundles of the first two zoo models.
fn tenants() -> Vec<String> {
    small_zoo()
        .iter()
        .take(2)
        .enumerate()
        .flat_map(|(i, dir)| ["--model".to_string(), format!("m{i}={}", bundle(dir, 2).0.display())])
        .collect()
}

#[test]
fn simulate_compares_every_policy_at_a_common_rate() {
    let json = scratch("simulate.json");
    let mut args = vec!["simulate".to_string(), "--cores".into(), "4".into(), "--queries".into(), "300".into()];
    args.extend(tenants());
    args.extend(["--json".to_string(), json.display().to_string()]);
    let o = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("simulated (modelled, not measured): 4 cores"), "{}", text(&o));
    let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let policies = v["policies"].as_array().unwrap();
    let names: Vec<&str> = policies.iter().map(|p| p["policy"].as_str().unwrap()).collect();
    assert_eq!(names, ["model-wise", "layer-wise", "layer-block", "veltair"]);
    let rates: Vec<f64> = policies.iter().map(|p| p["qps_at_qos"].as_f64().unwrap()).collect();
    assert!(rates.iter().all(|&r| r > 0.0), "{rates:?}");
    let lowest = rates.iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(v["common_rate"].as_f64().unwrap(), lowest);
    for p in policies {
        let per_model = p["per_model"].as_array().unwrap();
        assert_eq!(per_model.len(), 2);
        let queries: u64 = per_model.iter().map(|m| m["queries"].as_u64().unwrap()).sum();
        assert_eq!(queries, 300, "every query of the common-rate replay is counted once");
    }
}

/// Mean latency of a model-wise simulation at 1 query/s (queries never overlap), with `extra`
/// arguments.
fn simulated_mean_ms(extra: &[&str]) -> Result<f64, String> {
    let json = scratch(&format!("in-situ-{}.json", extra.len()));
    let mut args = vec!["simulate".to_string(), "--policy".into(), "model-wise".into(), "--latency-rate".into()];
    args.extend(["1".to_string(), "--queries".into(), "50".into(), "--json".into(), json.display().to_string()]);
    args.extend(tenants());
    args.extend(extra.iter().map(|a| a.to_string()));
    let o = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    if o.status.code() != Some(0) {
        return Err(text(&o));
    }
    let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    Ok(v["policies"][0]["mean_ms"].as_f64().unwrap())
}

#[test]
fn in_situ_factors_from_a_measured_bench_scale_simulated_layers() {
    // Three rows at width 1: the last ran longest, but only in company; of the two with enough
    // time alone (0.25 s or more), the second ran alone longer, so its 2.0 wins.
    let bench = |simulated: bool, models: &[&str]| {
        let row = |by_width: Value| -> Value {
            let per_model: Vec<Value> = models
                .iter()
                .map(|m| serde_json::json!({"model": m, "slowdown": 5.0, "slowdown_by_width": by_width}))
                .collect();
            serde_json::json!({ "per_model": per_model })
        };
        let cell = |alone_slowdown: f64, alone_seconds: f64, slowdown: f64, seconds: f64| serde_json::json!({"1": {"alone_slowdown": alone_slowdown, "alone_seconds": alone_seconds, "slowdown": slowdown, "seconds": seconds}});
        let rows = [cell(3.0, 0.26, 9.0, 0.5), cell(2.0, 0.3, 9.0, 0.5), cell(4.0, 0.2, 4.0, 1.0)];
        let path = scratch(&format!("bench-{simulated}-{}.json", models.len()));
        let v = serde_json::json!({"simulated": simulated, "policies": rows.map(row)});
        std::fs::write(&path, v.to_string()).unwrap();
        path.display().to_string()
    };
    let plain = simulated_mean_ms(&[]).unwrap();
    let doubled = simulated_mean_ms(&["--in-situ", &bench(false, &["m0", "m1"])]).unwrap();
    assert!((doubled / plain - 2.0).abs() < 1e-6, "{plain} ms -> {doubled} ms");
    let missing = simulated_mean_ms(&["--in-situ", &bench(false, &["m0"])]).unwrap_err();
    assert!(missing.contains("no measured layer slowdown for model `m1`"), "{missing}");
    let simulated = simulated_mean_ms(&["--in-situ", &bench(true, &["m0", "m1"])]).unwrap_err();
    assert!(simulated.contains("not the JSON of a measured"), "{simulated}");
}

#[test]
fn repeated_searches_report_every_run_and_their_median() {
    let json = scratch("repeats.json");
    let mut args = vec!["simulate".to_string(), "--policy".into(), "layer-wise".into(), "--repeats".into(), "3".into()];
    args.extend(["--queries".to_string(), "200".into(), "--json".into(), json.display().to_string()]);
    args.extend(tenants());
    let o = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("the median of 3 searches (seeds 1 to 3)"), "{}", text(&o));
    let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let row = &v["policies"][0];
    let mut runs: Vec<f64> = row["qps_at_qos_runs"].as_array().unwrap().iter().map(|r| r.as_f64().unwrap()).collect();
    assert_eq!(runs.len(), 3);
    runs.sort_by(f64::total_cmp);
    assert_eq!(row["qps_at_qos"].as_f64().unwrap(), runs[1]);
    assert_eq!(v["repeats"].as_u64(), Some(3));
}

#[test]
fn trace_prints_the_seeded_arrivals_and_targets() {
    let mut args = vec!["trace".to_string(), "--rate".into(), "50".into(), "--queries".into(), "40".into()];
    args.extend(tenants());
    let first = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let v: Value = serde_json::from_slice(&first.stdout).unwrap();
    let at: Vec<f64> = v["arrivals"].as_array().unwrap().iter().map(|a| a["at"].as_f64().unwrap()).collect();
    assert_eq!(at.len(), 40);
    assert!(at.windows(2).all(|w| w[0] < w[1]));
    assert!(v["arrivals"].as_array().unwrap().iter().all(|a| a["model"].as_u64().unwrap() < 2));
    for m in v["models"].as_array().unwrap() {
        let (qos, solo) = (m["qos_ms"].as_f64().unwrap(), m["solo_ms"].as_f64().unwrap());
        assert!((qos - 4.0 * solo).abs() < 1e-9 * qos, "default target is 4x the solo latency: {m}");
    }
    args.extend(["--seed".to_string(), "2".into()]);
    let other = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_ne!(first.stdout, other.stdout, "another seed, another trace");
}

#[test]
fn bad_experiment_arguments_exit_2_with_a_message() {
    let model = tenants();
    let m: Vec<&str> = model.iter().take(2).map(String::as_str).collect();
    let cases: [(Vec<&str>, &str); 5] = [
        (vec!["trace", "--rate", "0", m[0], m[1]], "--rate must be a positive"),
        (vec!["simulate", "--policy", "fifo", m[0], m[1]], "unknown policy `fifo`"),
        (vec!["simulate", "--policy", "veltair+fast", m[0], m[1]], "unknown policy suffix"),
        (vec!["simulate", "--latency-rate", "0", m[0], m[1]], "--latency-rate must be a positive"),
        (vec!["simulate", "--repeats", "0", m[0], m[1]], "--repeats must be positive"),
    ];
    for (args, message) in cases {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(message), "{args:?}: {}", text(&o));
    }
}
