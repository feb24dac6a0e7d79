//! The HTTP routes of the Open Inference Protocol v2 REST API (health, metadata, readiness,
//! inference) plus `/metrics`, over a shared [`Backend`]. Every error is JSON
//! `{"error": "..."}`; inference requests are validated before they reach the backend, and a
//! full backend queue is answered 503 at once.

use super::backend::{Backend, ModelInfo, Reply, SubmitError};
use super::metrics::{Failure, ServerMetrics};
use super::{request, response};
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;

/// Largest request body accepted (413 beyond).
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// Bodies up to this size are parsed on the async workers; larger ones (~10 ms of parsing per
/// MiB) on tokio's blocking pool, so a big request cannot stall the others.
const PARSE_INLINE_BYTES: usize = 1 << 20;

/// What every handler shares.
pub(crate) struct AppState {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) metrics: ServerMetrics,
    /// Set once shutdown starts: readiness turns 503 and new inference requests are refused.
    pub(crate) draining: AtomicBool,
}

type Shared = State<Arc<AppState>>;

pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(server_ready))
        .route("/v2", get(server_metadata))
        .route("/v2/models/{name}", get(model_metadata))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route("/v2/models/{name}/infer", post(infer))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// An error answer, and how it counts in the request metrics.
struct ApiError {
    status: StatusCode,
    failure: Failure,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, failure: Failure, message: impl Into<String>) -> ApiError {
        ApiError { status, failure, message: message.into() }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, Failure::BadRequest, message)
    }

    fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, Failure::Internal, message)
    }

    fn too_large() -> ApiError {
        let message = format!("request body exceeds the limit of {MAX_BODY_BYTES} bytes");
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, Failure::BadRequest, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

fn status(ok: bool) -> StatusCode {
    if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn live() -> StatusCode {
    StatusCode::OK
}

async fn server_ready(State(state): Shared) -> StatusCode {
    let backend = &state.backend;
    status(!state.draining.load(Ordering::Relaxed) && backend.models().iter().all(|m| backend.ready(&m.name)))
}

async fn server_metadata() -> Json<Value> {
    Json(response::server_metadata())
}

/// The model named in the path, if the backend serves it.
fn find(state: &AppState, name: Result<Path<String>, PathRejection>) -> Result<ModelInfo, ApiError> {
    let Path(name) = name.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let model = state.backend.models().into_iter().find(|m| m.name == name);
    model.ok_or_else(|| ApiError::bad_request(format!("unknown model '{name}'")))
}

async fn model_metadata(
    State(state): Shared,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(response::model_metadata(&find(&state, name)?)))
}

async fn model_ready(State(state): Shared, name: Result<Path<String>, PathRejection>) -> Result<StatusCode, ApiError> {
    let model = find(&state, name)?;
    Ok(status(!state.draining.load(Ordering::Relaxed) && state.backend.ready(&model.name)))
}

async fn infer(State(state): Shared, name: Result<Path<String>, PathRejection>, request: Request) -> Response {
    let model = match find(&state, name) {
        Ok(model) => model,
        Err(error) => {
            state.metrics.unknown_model();
            return error.into_response();
        }
    };
    let metrics = state.metrics.model(&model.name);
    let started = Instant::now();
    match run_query(&state, &model, request).await {
        Ok(body) => {
            metrics.succeeded(started.elapsed());
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(error) => {
            metrics.failed(error.failure);
            error.into_response()
        }
    }
}

/// Reads, validates and submits one inference request; waits for its reply.
async fn run_query(state: &AppState, model: &ModelInfo, request: Request) -> Result<Vec<u8>, ApiError> {
    if state.draining.load(Ordering::Relaxed) {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, Failure::ShuttingDown, "server is shutting down"));
    }
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(ApiError::too_large());
    }
    let body = Bytes::from_request(request, &()).await.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::too_large(),
        _ => ApiError::bad_request(rejection.body_text()),
    })?;
    let query = if body.len() <= PARSE_INLINE_BYTES {
        request::parse(&body, model)
    } else {
        let model = model.clone();
        let parsing = tokio::task::spawn_blocking(move || request::parse(&body, &model));
        parsing.await.map_err(|_| ApiError::internal("the request parser stopped"))?
    };
    let query = query.map_err(ApiError::bad_request)?;
    let (sender, receiver) = oneshot::channel();
    let done = Box::new(move |reply: Reply| {
        let _ = sender.send(reply);
    });
    state.backend.submit(&model.name, query.inputs, done).map_err(|error| match error {
        SubmitError::UnknownModel(name) => ApiError::bad_request(format!("unknown model '{name}'")),
        SubmitError::Busy => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, Failure::Busy, "server busy"),
        SubmitError::ShuttingDown => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, Failure::ShuttingDown, "server is shutting down")
        }
    })?;
    let reply = receiver.await.map_err(|_| ApiError::internal("the backend dropped the query without a reply"))?;
    let outputs = reply.map_err(ApiError::internal)?;
    response::infer_response(&model.name, query.id.as_deref(), &outputs, query.outputs.as_deref())
        .map_err(ApiError::internal)
}

async fn metrics(State(state): Shared) -> Response {
    let mut text = state.metrics.render();
    text.push_str(&state.backend.metrics());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, Failure::BadRequest, format!("no route for {}", uri.path()))
}
