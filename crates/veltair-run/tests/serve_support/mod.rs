//! Test support for the serving layer: a mock backend with a bounded queue whose queries can be
//! held, and a server started on a free loopback port.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;
use tokio::sync::oneshot;
use veltair_run::serve::{serve_on, Backend, DataType, ModelInfo, PortInfo, Reply, SubmitError, Tensor, TensorData};

/// A backend serving three models on threads of its own:
/// - `add_one`: `x` FP32 [1,4] -> `y` = x + 1 (FP32 [1,4]) and `total` = sum(x) (FP32 [1]);
/// - `shift`: `tokens` INT64 [2,3], `offset` INT64 [1] -> `shifted` = tokens + offset (INT64 [2,3]);
/// - `broken`: `x` FP32 [1] -> always fails.
///
/// At most `capacity` queries are in flight (more are refused as busy); while `hold` is set,
/// queries wait before answering.
pub struct Mock {
    capacity: usize,
    in_flight: Arc<AtomicUsize>,
    pub hold: Arc<AtomicBool>,
    pub ready: AtomicBool,
    /// Queries accepted by `submit`.
    pub submits: AtomicUsize,
}

impl Mock {
    pub fn new(capacity: usize) -> Arc<Mock> {
        Arc::new(Mock {
            capacity,
            in_flight: Arc::default(),
            hold: Arc::default(),
            ready: AtomicBool::new(true),
            submits: AtomicUsize::new(0),
        })
    }
}

fn port(name: &str, datatype: DataType, shape: &[usize]) -> PortInfo {
    PortInfo { name: name.into(), datatype, shape: shape.into() }
}

fn compute(model: &str, inputs: &[Tensor]) -> Reply {
    let tensor = |name: &str, shape: &[usize], data| Tensor { name: name.into(), shape: shape.into(), data };
    match (model, inputs) {
        ("add_one", [Tensor { data: TensorData::F32(x), .. }]) => Ok(vec![
            tensor("y", &[1, 4], TensorData::F32(x.iter().map(|v| v + 1.0).collect())),
            tensor("total", &[1], TensorData::F32(vec![x.iter().sum()])),
        ]),
        ("shift", [Tensor { data: TensorData::I64(tokens), .. }, Tensor { data: TensorData::I64(offset), .. }]) => {
            let shifted = tokens.iter().map(|t| t.wrapping_add(offset[0])).collect();
            Ok(vec![tensor("shifted", &[2, 3], TensorData::I64(shifted))])
        }
        ("broken", _) => Err("kernel failed".to_string()),
        _ => Err(format!("the mock got unexpected inputs for {model}: {inputs:?}")),
    }
}

impl Backend for Mock {
    fn models(&self) -> Vec<ModelInfo> {
        let model = |name: &str, inputs, outputs| ModelInfo { name: name.into(), inputs, outputs };
        vec![
            model(
                "add_one",
                vec![port("x", DataType::Fp32, &[1, 4])],
                vec![port("y", DataType::Fp32, &[1, 4]), port("total", DataType::Fp32, &[1])],
            ),
            model(
                "shift",
                vec![port("tokens", DataType::Int64, &[2, 3]), port("offset", DataType::Int64, &[1])],
                vec![port("shifted", DataType::Int64, &[2, 3])],
            ),
            model("broken", vec![port("x", DataType::Fp32, &[1])], vec![port("y", DataType::Fp32, &[1])]),
        ]
    }

    fn ready(&self, _model: &str) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    fn submit(&self, model: &str, inputs: Vec<Tensor>, done: Box<dyn FnOnce(Reply) + Send>) -> Result<(), SubmitError> {
        let admitted =
            self.in_flight.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < self.capacity).then_some(n + 1));
        if admitted.is_err() {
            return Err(SubmitError::Busy);
        }
        self.submits.fetch_add(1, Ordering::SeqCst);
        let reply = compute(model, &inputs);
        let (hold, in_flight) = (Arc::clone(&self.hold), Arc::clone(&self.in_flight));
        thread::spawn(move || {
            while hold.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(2));
            }
            in_flight.fetch_sub(1, Ordering::SeqCst);
            done(reply);
        });
        Ok(())
    }

    fn metrics(&self) -> String {
        format!("# TYPE mock_queue_depth gauge\nmock_queue_depth {}\n", self.in_flight.load(Ordering::SeqCst))
    }
}

/// A server on a free loopback port, running on a thread with its own tokio runtime; dropping
/// it starts the shutdown.
pub struct Server {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

pub fn start(backend: Arc<dyn Backend>) -> Server {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown, signal) = oneshot::channel::<()>();
    let thread = thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        runtime.block_on(serve_on(backend, listener, async {
            let _ = signal.await;
        }))
    });
    Server { addr, shutdown: Some(shutdown), thread: Some(thread) }
}

impl Server {
    pub fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Shuts down and returns what `serve_on` returned.
    pub fn stop(mut self) -> io::Result<()> {
        self.begin_shutdown();
        self.thread.take().unwrap().join().unwrap()
    }
}
