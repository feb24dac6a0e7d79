//! The serving layer under load and at shutdown, over a mock backend whose queries are held
//! until the test releases them (no timing assertions): a full queue answers 503 at once while
//! the admitted query is still running, and a shutdown stops accepting connections but lets
//! the in-flight request finish before `serve` returns.

mod http_client;
mod serve_support;

use http_client::{get, post, wait_until};
use serde_json::json;
use serve_support::{start, Mock};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::Duration;

const ADD_ONE: &str = "/v2/models/add_one/infer";

fn add_one(first: i32) -> String {
    let data: Vec<i32> = (first..first + 4).collect();
    format!(
        r#"{{"inputs":[{{"name":"x","shape":[1,4],"datatype":"FP32","data":{data:?}}}],"outputs":[{{"name":"y"}}]}}"#
    )
}

fn expected(first: i32) -> serde_json::Value {
    let y: Vec<f64> = (first..first + 4).map(|v| f64::from(v) + 1.0).collect();
    json!([{"name": "y", "datatype": "FP32", "shape": [1, 4], "data": y}])
}

#[test]
fn a_full_queue_answers_503_without_waiting() {
    const CLIENTS: usize = 20;
    let mock = Mock::new(1);
    mock.hold.store(true, Ordering::SeqCst);
    let server = start(mock.clone());
    let addr = server.addr;
    let (sender, results) = mpsc::channel();
    let barrier = Arc::new(Barrier::new(CLIENTS));
    for client in 0..CLIENTS {
        let (sender, barrier) = (sender.clone(), Arc::clone(&barrier));
        thread::spawn(move || {
            let first = 10 * client as i32;
            barrier.wait();
            sender.send((first, post(addr, ADD_ONE, &add_one(first)))).unwrap();
        });
    }
    // One query holds the only slot until released, so every other request must have been
    // answered while it was still running.
    let timeout = Duration::from_secs(60);
    for _ in 1..CLIENTS {
        let (_, r) = results.recv_timeout(timeout).expect("a refused request waited for the admitted one");
        assert_eq!((r.status, r.error()), (503, "server busy".to_string()));
    }
    assert_eq!(mock.submits.load(Ordering::SeqCst), 1);
    assert_eq!(get(addr, "/v2/health/ready").status, 200, "a busy server is still ready");
    mock.hold.store(false, Ordering::SeqCst);
    let (first, r) = results.recv_timeout(timeout).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["outputs"], expected(first));
    let again = post(addr, ADD_ONE, &add_one(7));
    assert_eq!(again.status, 200, "the slot is free again: {}", again.body);
    assert_eq!(again.json()["outputs"], expected(7));
    assert_eq!(mock.submits.load(Ordering::SeqCst), 2);
    let metrics = get(addr, "/metrics");
    assert!(metrics.headers.contains("content-type: text/plain"));
    for line in [
        "veltair_requests_total{model=\"add_one\"} 21",
        "veltair_request_failures_total{model=\"add_one\",reason=\"busy\"} 19",
        "veltair_request_duration_seconds_count{model=\"add_one\"} 2",
    ] {
        assert!(metrics.body.lines().any(|l| l == line), "no line {line:?} in\n{}", metrics.body);
    }
    server.stop().unwrap();
}

#[test]
fn shutdown_lets_the_in_flight_request_finish() {
    let mock = Mock::new(4);
    mock.hold.store(true, Ordering::SeqCst);
    let mut server = start(mock.clone());
    let addr = server.addr;
    assert_eq!(get(addr, "/v2/health/ready").status, 200);
    let in_flight = thread::spawn(move || post(addr, ADD_ONE, &add_one(1)));
    wait_until("the query is submitted", || mock.submits.load(Ordering::SeqCst) == 1);
    server.begin_shutdown();
    // The listener closes while the query is still held.
    wait_until("new connections are refused", || TcpStream::connect(addr).is_err());
    assert!(!in_flight.is_finished());
    mock.hold.store(false, Ordering::SeqCst);
    let r = in_flight.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["outputs"], expected(1));
    server.stop().unwrap();
    assert_eq!(mock.submits.load(Ordering::SeqCst), 1);
}
