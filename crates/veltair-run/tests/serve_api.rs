//! The KServe v2 REST API over a mock backend: health, metadata, readiness, inference with flat
//! and nested data and output filters, every kind of bad request (400 with a message, never
//! reaching the backend), 413, 404, 500 from a failing backend, and /metrics.

mod http_client;
mod serve_support;

use http_client::{get, post, send, wait_until};
use serde_json::json;
use serve_support::{start, Mock};
use std::sync::atomic::Ordering;
use std::thread;
use veltair_run::serve::MAX_BODY_BYTES;

const ADD_ONE: &str = "/v2/models/add_one/infer";
const SHIFT: &str = "/v2/models/shift/infer";
const X: &str = r#"{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}"#;

#[test]
fn health_and_metadata() {
    let mock = Mock::new(4);
    let server = start(mock.clone());
    let addr = server.addr;
    assert_eq!(get(addr, "/v2/health/live").status, 200);
    assert_eq!(get(addr, "/v2/health/ready").status, 200);
    assert_eq!(get(addr, "/v2/models/shift/ready").status, 200);
    let server_meta = get(addr, "/v2");
    assert_eq!(server_meta.status, 200);
    assert_eq!(server_meta.json(), json!({"name": "veltair", "version": env!("CARGO_PKG_VERSION"), "extensions": []}));
    let model = get(addr, "/v2/models/shift");
    assert_eq!(model.status, 200);
    assert_eq!(
        model.json(),
        json!({
            "name": "shift", "versions": ["1"], "platform": "veltair",
            "inputs": [
                {"name": "tokens", "datatype": "INT64", "shape": [2, 3]},
                {"name": "offset", "datatype": "INT64", "shape": [1]},
            ],
            "outputs": [{"name": "shifted", "datatype": "INT64", "shape": [2, 3]}],
        })
    );
    for path in ["/v2/models/nope", "/v2/models/nope/ready"] {
        let r = get(addr, path);
        assert_eq!((r.status, r.error()), (400, "unknown model 'nope'".to_string()), "{path}");
    }
    mock.ready.store(false, Ordering::SeqCst);
    assert_eq!(get(addr, "/v2/health/ready").status, 503);
    assert_eq!(get(addr, "/v2/models/add_one/ready").status, 503);
    assert_eq!(get(addr, "/v2/health/live").status, 200);
    let r = get(addr, "/v2/nothing/here");
    assert_eq!((r.status, r.error()), (404, "no route for /v2/nothing/here".to_string()));
    server.stop().unwrap();
}

#[test]
fn infer_with_flat_and_nested_data() {
    let mock = Mock::new(4);
    let server = start(mock.clone());
    let addr = server.addr;
    let r = post(addr, ADD_ONE, &format!(r#"{{"id":"q1","inputs":[{X}]}}"#));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({
            "model_name": "add_one", "model_version": "1", "id": "q1",
            "outputs": [
                {"name": "y", "datatype": "FP32", "shape": [1, 4], "data": [2.0, 3.0, 4.0, 5.0]},
                {"name": "total", "datatype": "FP32", "shape": [1], "data": [10.0]},
            ],
        })
    );
    assert!(r.headers.contains("content-type: application/json"));
    let nested = r#"{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[[0.5,-1,1e3,0]]}],
        "outputs":[{"name":"total"}]}"#;
    let r = post(addr, ADD_ONE, nested);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["outputs"], json!([{"name": "total", "datatype": "FP32", "shape": [1], "data": [999.5]}]));
    assert!(r.json().get("id").is_none());
    let shift = r#"{"inputs":[
        {"name":"offset","shape":[1],"datatype":"INT64","data":[-10]},
        {"name":"tokens","shape":[2,3],"datatype":"INT64","data":[[1,2,3],[4,5,9007199254740993]]}]}"#;
    let r = post(addr, SHIFT, shift);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["outputs"][0]["data"], json!([-9, -8, -7, -6, -5, 9007199254740983i64]));
    // Bodies over 1 MiB are parsed off the async workers.
    let padded = format!(r#"{{"inputs":[{X}]{}}}"#, " ".repeat(2 << 20));
    let r = post(addr, ADD_ONE, &padded);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["outputs"][1]["data"], json!([10.0]));
    assert_eq!(mock.submits.load(Ordering::SeqCst), 4);
    server.stop().unwrap();
}

#[test]
fn bad_requests_get_400_with_a_message_and_never_reach_the_backend() {
    let mock = Mock::new(4);
    let server = start(mock.clone());
    let addr = server.addr;
    let x = |shape: &str, datatype: &str, data: &str| {
        format!(r#"{{"inputs":[{{"name":"x","shape":{shape},"datatype":"{datatype}","data":{data}}}]}}"#)
    };
    let tokens = r#"{"name":"tokens","shape":[2,3],"datatype":"INT64","data":[1,2,3,4,5,6]}"#;
    let cases: Vec<(&str, String, &str)> = vec![
        ("/v2/models/nope/infer", format!(r#"{{"inputs":[{X}]}}"#), "unknown model 'nope'"),
        ("/v2/models/%FF/infer", format!(r#"{{"inputs":[{X}]}}"#), "Invalid URL"),
        (ADD_ONE, "{".into(), "invalid request: EOF while parsing an object"),
        (ADD_ONE, "".into(), "the request body must be a JSON object"),
        (ADD_ONE, x("[1,4]", "FP32", "[1,NaN,3,4]"), "invalid request: expected value"),
        (ADD_ONE, "[1,2]".into(), "the request body must be a JSON object"),
        (ADD_ONE, "{}".into(), "the request needs an 'inputs' list"),
        (
            ADD_ONE,
            r#"{"inputs":"x"}"#.into(),
            "invalid request: invalid type: string \"x\", expected a list of input objects",
        ),
        (ADD_ONE, r#"{"inputs":[7]}"#.into(), "invalid type: integer `7`, expected an input object"),
        (ADD_ONE, r#"{"inputs":[{"name":5}]}"#.into(), "inputs[0] needs a string 'name'"),
        (ADD_ONE, format!(r#"{{"id":3,"inputs":[{X}]}}"#), "'id' must be a string"),
        (
            ADD_ONE,
            x("[1,4]", "FP32", "[1,2,3,4]").replace("\"x\"", "\"z\""),
            "model 'add_one' has no input 'z' (inputs: 'x')",
        ),
        (ADD_ONE, r#"{"inputs":[]}"#.into(), "missing input 'x'"),
        (SHIFT, format!(r#"{{"inputs":[{tokens}]}}"#), "missing input 'offset'"),
        (ADD_ONE, format!(r#"{{"inputs":[{X},{X}]}}"#), "input 'x' is given more than once"),
        (ADD_ONE, x("[1,4]", "INT64", "[1,2,3,4]"), "input 'x': datatype INT64 does not match the model's FP32"),
        (ADD_ONE, x("[1,4]", "FP16", "[1,2,3,4]"), "input 'x': datatype FP16 does not match the model's FP32"),
        (ADD_ONE, x("[4]", "FP32", "[1,2,3,4]"), "input 'x': shape [4] does not match the model's shape [1, 4]"),
        (ADD_ONE, x("[2,2]", "FP32", "[1,2,3,4]"), "input 'x': shape [2, 2] does not match the model's shape [1, 4]"),
        (ADD_ONE, x("[-1,4]", "FP32", "[1,2,3,4]"), "input 'x': 'shape' must be a list of non-negative integers"),
        (ADD_ONE, x("[1e30,4]", "FP32", "[1,2,3,4]"), "'shape' must be a list of non-negative integers"),
        (ADD_ONE, x("[4611686018427387904,4]", "FP32", "[]"), "does not match the model's shape [1, 4]"),
        (ADD_ONE, x("[1,4]", "FP32", "[1,2,3]"), "input 'x': shape [1, 4] needs 4 elements but data has 3"),
        (ADD_ONE, x("[1,4]", "FP32", "[[1,2],[3,4],[5]]"), "needs 4 elements but data has 5"),
        (ADD_ONE, x("[1,4]", "FP32", r#"[1,"2",3,4]"#), "invalid type: string \"2\", expected a list of numbers"),
        (
            ADD_ONE,
            x("[1,4]", "FP32", "[1,2,3,1e300]"),
            "input 'x': data must hold only finite FP32 numbers, found 1e300",
        ),
        (ADD_ONE, x("[1,4]", "FP32", "[1,true,3,4]"), "invalid type: boolean `true`, expected a list of numbers"),
        (ADD_ONE, x("[1,4]", "FP32", r#""1,2,3,4""#), "invalid type: string \"1,2,3,4\", expected a list of numbers"),
        (ADD_ONE, x("[1,4]", "FP32", "null"), "input 'x' needs a 'data' list"),
        (
            SHIFT,
            format!(r#"{{"inputs":[{}]}}"#, tokens.replace("6]", "6.5]")),
            "data must hold only INT64 integers, found 6.5",
        ),
        (
            ADD_ONE,
            format!(r#"{{"inputs":[{X}],"outputs":[{{"name":"q"}}]}}"#),
            "model 'add_one' has no output 'q' (outputs: 'y', 'total')",
        ),
        (
            ADD_ONE,
            format!(r#"{{"inputs":[{X}],"outputs":[{{"name":"y"}},{{"name":"y"}}]}}"#),
            "output 'y' is requested more than once",
        ),
        (ADD_ONE, format!(r#"{{"inputs":[{X}],"outputs":"y"}}"#), "'outputs' must be a list"),
    ];
    for (path, body, message) in &cases {
        let r = post(addr, path, body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.error().contains(message), "{body}: {:?} lacks {message:?}", r.error());
    }
    assert_eq!(mock.submits.load(Ordering::SeqCst), 0);
    server.stop().unwrap();
}

#[test]
fn oversized_bodies_get_413() {
    let server = start(Mock::new(4));
    let raw = format!(
        "POST {ADD_ONE} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        MAX_BODY_BYTES + 1
    );
    let r = send(server.addr, raw.as_bytes()).unwrap();
    assert_eq!(r.status, 413);
    assert!(r.error().contains("exceeds the limit"), "{}", r.body);
    server.stop().unwrap();
}

#[test]
fn backend_failures_get_500_and_health_answers_while_a_query_is_in_flight() {
    let mock = Mock::new(4);
    let server = start(mock.clone());
    let addr = server.addr;
    let r =
        post(addr, "/v2/models/broken/infer", r#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}"#);
    assert_eq!((r.status, r.error()), (500, "kernel failed".to_string()));
    mock.hold.store(true, Ordering::SeqCst);
    let query = thread::spawn(move || post(addr, ADD_ONE, &format!(r#"{{"inputs":[{X}]}}"#)));
    wait_until("the query is submitted", || mock.submits.load(Ordering::SeqCst) == 2);
    assert_eq!(get(addr, "/v2/health/ready").status, 200);
    assert!(get(addr, "/metrics").body.contains("\nmock_queue_depth 1\n"));
    mock.hold.store(false, Ordering::SeqCst);
    assert_eq!(query.join().unwrap().status, 200);
    server.stop().unwrap();
}

#[test]
fn metrics_count_requests_by_model_and_outcome() {
    let mock = Mock::new(4);
    let server = start(mock.clone());
    let addr = server.addr;
    let ok = format!(r#"{{"inputs":[{X}]}}"#);
    for _ in 0..2 {
        assert_eq!(post(addr, ADD_ONE, &ok).status, 200);
    }
    assert_eq!(post(addr, ADD_ONE, "{").status, 400);
    assert_eq!(post(addr, "/v2/models/nope/infer", &ok).status, 400);
    assert_eq!(
        post(addr, "/v2/models/broken/infer", r#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}"#)
            .status,
        500
    );
    let r = get(addr, "/metrics");
    assert_eq!(r.status, 200);
    assert!(r.headers.contains("content-type: text/plain"), "{}", r.headers);
    for line in [
        "# TYPE veltair_requests_total counter",
        "veltair_requests_total{model=\"add_one\"} 3",
        "veltair_requests_total{model=\"broken\"} 1",
        "# TYPE veltair_request_failures_total counter",
        "veltair_request_failures_total{model=\"add_one\",reason=\"bad_request\"} 1",
        "veltair_request_failures_total{model=\"add_one\",reason=\"busy\"} 0",
        "veltair_request_failures_total{model=\"add_one\",reason=\"internal\"} 0",
        "veltair_request_failures_total{model=\"broken\",reason=\"internal\"} 1",
        "# TYPE veltair_request_duration_seconds histogram",
        "veltair_request_duration_seconds_bucket{model=\"add_one\",le=\"+Inf\"} 2",
        "veltair_request_duration_seconds_count{model=\"add_one\"} 2",
        "veltair_request_duration_seconds_count{model=\"broken\"} 0",
        "veltair_unknown_model_requests_total 1",
        "# TYPE mock_queue_depth gauge",
        "mock_queue_depth 0",
    ] {
        assert!(r.body.lines().any(|l| l == line), "no line {line:?} in\n{}", r.body);
    }
    assert!(!r.body.contains("nope"));
    server.stop().unwrap();
}
