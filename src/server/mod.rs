//! `triage serve`: the HTTP API for channels and the chatbot, persistent
//! department queues, metrics and a page to try it. A thin transport: the
//! engine does the work (through the micro-batcher), the store keeps cases.

pub mod auth;
pub mod batcher;
pub mod errors;
pub mod handlers;
pub mod metrics;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::engine::{Engine, EngineOptions};
use crate::queue::{CaseStore, SqliteStore};
use auth::ApiKeys;
use batcher::Batcher;
use metrics::Metrics;

/// Shared by every handler.
pub struct AppState {
    pub engine: Arc<Engine>,
    pub batcher: Batcher,
    pub store: Arc<dyn CaseStore>,
    pub metrics: Arc<Metrics>,
    pub keys: ApiKeys,
    pub keys_enabled: bool,
    pub request_timeout: Duration,
    pub max_batch_items: usize,
    /// Axis compared for repeat detection, and the signal a repeat gets.
    pub repeat_axis: String,
    pub repeat_signal: String,
}

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub models: PathBuf,
    pub config: PathBuf,
    pub data_dir: PathBuf,
    /// Overrides `[server] port`.
    pub port: Option<u16>,
    /// Overrides `[server] bind`.
    pub bind: Option<String>,
}

async fn track(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let start = Instant::now();
    let resp = next.run(req).await;
    state
        .metrics
        .observe_request(&route, resp.status().as_u16(), start.elapsed());
    resp
}

/// Backstop for every route: a request not answered in time gets a JSON 408.
/// (Scoring has its own, shorter, timeout that answers 503.)
async fn deadline(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let limit = state.request_timeout + Duration::from_secs(2);
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => errors::ApiError::new(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request took too long and was abandoned; retry",
        )
        .into_response(),
    }
}

async fn require_key(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Result<Response, errors::ApiError> {
    let actor = state.keys.check(req.headers())?;
    req.extensions_mut().insert(actor);
    Ok(next.run(req).await)
}

async fn open_actor(mut req: Request, next: Next) -> Response {
    req.extensions_mut().insert(auth::Actor("anonymous".into()));
    next.run(req).await
}

/// The full router for `state`.
pub fn router(state: Arc<AppState>, max_body_bytes: usize, classify_open: bool) -> Router {
    let classify = Router::new()
        .route("/v1/classify", post(handlers::classify))
        .route("/v1/classify/batch", post(handlers::classify_batch));
    let classify = if classify_open {
        classify.layer(middleware::from_fn(open_actor))
    } else {
        classify.layer(middleware::from_fn_with_state(state.clone(), require_key))
    };
    let protected = Router::new()
        .route("/v1/cases", post(handlers::create_case))
        .route("/v1/cases/{id}", get(handlers::get_case))
        .route("/v1/cases/{id}/ack", post(handlers::ack_case))
        .route("/v1/cases/{id}/resolve", post(handlers::resolve_case))
        .route("/v1/queues", get(handlers::list_queues))
        .route("/v1/queues/{queue}", get(handlers::list_queue))
        .layer(middleware::from_fn_with_state(state.clone(), require_key));
    Router::new()
        .route("/", get(handlers::page))
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(handlers::metrics))
        .route("/openapi.json", get(handlers::openapi))
        .merge(classify)
        .merge(protected)
        .fallback(handlers::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            tracing::error!("a request handler panicked");
            errors::ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "internal", "an internal error occurred; it has been logged").into_response()
        }))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            // Method, path and request id only: bodies and headers (keys, texts) are never logged.
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// A running server's state and what to do on shutdown.
pub struct Service {
    pub state: Arc<AppState>,
    pub router: Router,
    pub addr: SocketAddr,
}

/// Load everything (models, config, store) and build the service.
pub fn build(opts: &ServeOptions) -> anyhow::Result<Service> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let engine = Arc::new(Engine::load(&EngineOptions {
        model_dir: opts.models.clone(),
        config: opts.config.clone(),
        sessions: workers,
    })?);
    let settings = engine.config().server.clone();
    if engine.manifest().head(&settings.repeat_axis).is_none() {
        anyhow::bail!(
            "{}: server.repeat_axis `{}` is not an axis of the model",
            opts.config.display(),
            settings.repeat_axis
        );
    }
    let store: Arc<dyn CaseStore> =
        Arc::new(SqliteStore::open(&opts.data_dir).with_context(|| {
            format!("cannot open the case store in {}", opts.data_dir.display())
        })?);
    let keys = ApiKeys::new(
        &settings.api_keys,
        std::env::var("TRIAGE_API_KEYS").ok().as_deref(),
    )
    .map_err(anyhow::Error::msg)?;
    if !keys.enabled() {
        tracing::warn!("no API keys configured: case and queue endpoints are open; set TRIAGE_API_KEYS=name:key or [server.api_keys]");
    }
    let metrics = Arc::new(Metrics::new());
    let batcher = Batcher::start(
        engine.clone(),
        metrics.clone(),
        workers,
        settings.queue_capacity,
        settings.max_batch,
    );
    let state = Arc::new(AppState {
        engine,
        batcher,
        store,
        metrics,
        keys_enabled: keys.enabled(),
        keys,
        request_timeout: handlers::request_timeout(&settings.request_timeout),
        max_batch_items: settings.max_batch_items,
        repeat_axis: settings.repeat_axis.clone(),
        repeat_signal: settings.repeat_signal.clone(),
    });
    let router = router(
        state.clone(),
        settings.max_body_bytes,
        settings.classify_open,
    );
    let bind = opts.bind.clone().unwrap_or(settings.bind);
    let port = opts.port.unwrap_or(settings.port);
    let addr: SocketAddr = format!("{bind}:{port}")
        .parse()
        .with_context(|| format!("`{bind}:{port}` is not a socket address"))?;
    Ok(Service {
        state,
        router,
        addr,
    })
}

/// Serve until `shutdown` resolves; then drain in-flight requests, stop the
/// inference workers and close the store.
pub async fn run(
    service: Service,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = service.state.clone();
    axum::serve(listener, service.router)
        .with_graceful_shutdown(shutdown)
        .await
        .context("the HTTP server failed")?;
    tracing::info!("draining: stopping inference workers and closing the store");
    tokio::task::spawn_blocking(move || {
        state.batcher.shutdown();
        state.store.close()
    })
    .await
    .context("shutdown task failed")??;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown signal received");
}
