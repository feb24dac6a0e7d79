//! The runtime's HTTP serving layer: the Open Inference Protocol (KServe v2) REST API and
//! Prometheus metrics over any [`Backend`], with graceful drain on shutdown. The tokio runtime
//! here only parses, validates and encodes; inference runs on the backend's own threads.

mod backend;
mod flat;
pub mod metrics;
mod request;
mod response;
mod routes;
mod small;

pub use backend::{Backend, DataType, ModelInfo, PortInfo, Reply, SubmitError, Tensor, TensorData};
pub use routes::MAX_BODY_BYTES;

use axum::serve::ListenerExt;
use routes::AppState;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;

/// Serves `backend` on `addr` until `shutdown` completes, then drains: stops accepting
/// connections, answers readiness 503, lets in-flight requests finish, and returns.
pub async fn serve(
    backend: Arc<dyn Backend>,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    run(backend, TcpListener::bind(addr).await?, shutdown).await
}

/// [`serve`] on a listener bound by the caller (e.g. to port 0, reading the port back first).
pub async fn serve_on(
    backend: Arc<dyn Backend>,
    listener: std::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    run(backend, TcpListener::from_std(listener)?, shutdown).await
}

async fn run(
    backend: Arc<dyn Backend>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let state = Arc::new(AppState { backend, metrics: Default::default(), draining: AtomicBool::new(false) });
    let draining = Arc::clone(&state);
    let signal = async move {
        shutdown.await;
        draining.draining.store(true, Ordering::Relaxed);
    };
    // Large responses go out in several writes: without TCP_NODELAY the last one could wait
    // for the client's delayed ACK.
    let listener = listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    axum::serve(listener, routes::router(state)).with_graceful_shutdown(signal).await
}

/// Completes on SIGTERM or ctrl-c (SIGINT). Must be polled inside a tokio runtime.
pub async fn sigterm() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = terminate => {}
        () = interrupt => {}
    }
}

/// Serves `backend` on `addr` from a small tokio runtime of its own until SIGTERM or ctrl-c,
/// printing the bound address first; returns after the drain.
pub fn run_blocking(backend: Arc<dyn Backend>, addr: SocketAddr) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("veltair-http")
        .enable_all()
        .build()?;
    let listener = std::net::TcpListener::bind(addr)?;
    println!("veltair-run: serving on http://{}", listener.local_addr()?);
    runtime.block_on(serve_on(backend, listener, sigterm()))
}
