//! `veltair-run serve` end to end, as a process on a bundle of the committed ResNet-50 zoo
//! model: the official Python `tritonclient` drives it (health, metadata, an inference checked
//! against onnxruntime's outputs); an overload answers 503 while memory stays flat and every
//! accepted query is answered correctly; SIGTERM lets in-flight queries finish and exits 0.

mod http_client;
mod zoo_support;

use http_client::{get, post, send, wait_until};
use serde_json::json;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use veltair_tests::{small_zoo, PreparedCase};
use zoo_support::{bundle, scratch};

/// Each test runs a server on every core: one at a time.
static ONE_SERVER: Mutex<()> = Mutex::new(());

struct Served {
    child: Child,
    addr: SocketAddr,
    _turn: MutexGuard<'static, ()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `veltair-run serve` on a free port and waits until it is ready.
fn serve(bundle: &Path, capacity: usize) -> Served {
    let turn = ONE_SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_veltair-run"))
        .args(["serve", "--model", &format!("resnet={}:1000", bundle.display()), "--listen", &addr.to_string()])
        .args(["--capacity", &capacity.to_string()])
        .spawn()
        .expect("veltair-run starts");
    let served = Served { child, addr, _turn: turn };
    wait_until("the server is ready", || {
        send(addr, format!("GET /v2/health/ready HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
            .is_ok_and(|r| r.status == 200)
    });
    served
}

fn resnet() -> (PathBuf, PreparedCase) {
    let dir = small_zoo().into_iter().find(|d| d.ends_with("resnet50")).unwrap();
    let (path, _, case) = bundle(&dir, 2);
    (path, case)
}

fn input(case: &PreparedCase) -> Vec<f32> {
    case.feeds[0][0].as_f32("ResNet-50's input").unwrap().to_vec()
}

fn expected(case: &PreparedCase) -> Vec<f32> {
    case.expected[0][0].as_f32("expected").unwrap().to_vec()
}

fn infer_body(case: &PreparedCase) -> String {
    let shape = case.feeds[0][0].shape().to_vec();
    json!({"inputs": [{"name": "input", "shape": shape, "datatype": "FP32", "data": input(case)}]}).to_string()
}

fn matches(body: &serde_json::Value, want: &[f32]) -> bool {
    let got: Vec<f64> =
        body["outputs"][0]["data"].as_array().map_or_else(Vec::new, |a| a.iter().filter_map(|x| x.as_f64()).collect());
    got.len() == want.len()
        && got.iter().zip(want).all(|(g, &w)| (g - w as f64).abs() <= 1e-4 + 1e-3 * (w as f64).abs())
}

fn write_f32(path: &Path, values: &[f32]) {
    std::fs::write(path, values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn tritonclient_drives_the_server() {
    let (path, case) = resnet();
    let served = serve(&path, 8);
    let (input_file, expected_file) = (scratch("triton-input.bin"), scratch("triton-expected.bin"));
    write_f32(&input_file, &input(&case));
    write_f32(&expected_file, &expected(&case));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = Command::new("bash").arg(root.join("scripts/pyenv.sh")).arg("client").output().expect("bash runs");
    assert!(python.status.success(), "creating the client venv: {}", String::from_utf8_lossy(&python.stderr));
    let python = String::from_utf8(python.stdout).unwrap().trim().to_string();
    let shape = case.feeds[0][0].shape().iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x");
    let out = Command::new(python)
        .arg(root.join("scripts/triton_e2e.py"))
        .args([&served.addr.to_string(), "resnet", "input", &shape])
        .arg(&input_file)
        .arg("logits")
        .arg(&expected_file)
        .output()
        .expect("the client runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("\"output_matches\": true"), "{text}");
}

#[test]
fn overload_answers_503_keeps_memory_flat_and_answers_every_accepted_query() {
    let (path, case) = resnet();
    let served = serve(&path, 2);
    let (addr, body, want) = (served.addr, infer_body(&case), expected(&case));
    for _ in 0..20 {
        assert!(matches(&post(addr, "/v2/models/resnet/infer", &body).json(), &want));
    }
    let before = rss_kib(served.child.id());
    let statuses: Vec<(u16, bool)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..16)
            .map(|_| {
                s.spawn(|| {
                    (0..60)
                        .map(|_| {
                            let r = post(addr, "/v2/models/resnet/infer", &body);
                            let ok = match r.status {
                                200 => {
                                    r.headers.contains("content-type: application/json") && matches(&r.json(), &want)
                                }
                                503 => r.error() == "server busy",
                                _ => false,
                            };
                            (r.status, ok)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let after = rss_kib(served.child.id());
    let (ok, busy) = (statuses.iter().filter(|s| s.0 == 200).count(), statuses.iter().filter(|s| s.0 == 503).count());
    assert_eq!(ok + busy, statuses.len(), "only 200 and 503: {:?}", statuses.iter().find(|s| s.0 != 200 && s.0 != 503));
    assert!(busy > 0 && ok > 0, "{ok} answered, {busy} refused");
    assert!(statuses.iter().all(|s| s.1), "every accepted query is answered correctly, every refusal says busy");
    assert!(
        after < before + 64 * 1024,
        "memory grew from {before} KiB to {after} KiB over {} requests",
        statuses.len()
    );
    let metrics = get(addr, "/metrics").body;
    assert!(metrics.contains("veltair_request_failures_total"), "{metrics}");
    let counters = metrics.lines().find_map(|l| l.strip_prefix("veltair_hardware_counters "));
    match counters {
        Some("0") => assert!(!metrics.contains("veltair_cache_miss_rate"), "{metrics}"),
        Some("1") => assert!(metrics.contains("\nveltair_cache_miss_rate "), "{metrics}"),
        other => panic!("veltair_hardware_counters is {other:?} in\n{metrics}"),
    }
}

#[test]
fn sigterm_drains_in_flight_queries_and_exits_0() {
    let (path, case) = resnet();
    let mut served = serve(&path, 64);
    let (addr, body, want) = (served.addr, infer_body(&case), expected(&case));
    let pid = served.child.id();
    let outcomes: Vec<Result<bool, std::io::ErrorKind>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let mut seen = Vec::new();
                    let deadline = Instant::now() + Duration::from_secs(5);
                    while Instant::now() < deadline {
                        let raw = format!(
                            "POST /v2/models/resnet/infer HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
                             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        match send(addr, raw.as_bytes()) {
                            Ok(r) => seen.push(Ok(r.status == 503 || (r.status == 200 && matches(&r.json(), &want)))),
                            Err(e) => {
                                seen.push(Err(e.kind()));
                                break;
                            }
                        }
                    }
                    seen
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let kill = Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill runs");
        assert!(kill.success());
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let status = served.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "a drained server exits 0");
    let answered = outcomes.iter().filter(|o| matches!(o, Ok(true))).count();
    assert!(answered > 0);
    assert!(outcomes.iter().all(|o| !matches!(o, Ok(false))), "every response is complete and correct");
    assert!(
        outcomes.iter().all(|o| !matches!(o, Err(std::io::ErrorKind::InvalidData))),
        "no truncated response: {outcomes:?}"
    );
}
