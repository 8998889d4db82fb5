//! Route handlers: parse, call the engine (through the batcher) or the store,
//! shape the answer. No business rules live here.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Json};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::engine::{Complaint, Triage};
use crate::queue::{CaseStore, Transition};
use crate::server::auth::Actor;
use crate::server::batcher::SubmitError;
use crate::server::errors::{ApiError, ApiJson};
use crate::server::AppState;
use crate::signals::Signal;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyRequest {
    pub text: String,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub customer_id: Option<String>,
}

impl ClassifyRequest {
    fn into_complaint(self) -> Complaint {
        Complaint {
            id: self.id,
            text: self.text,
            channel: self.channel,
            customer_id: self.customer_id,
            received_at: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub items: Vec<ClassifyRequest>,
}

async fn score(
    state: &AppState,
    items: Vec<Complaint>,
) -> Result<Vec<Result<Triage, ApiError>>, ApiError> {
    let rx = state.batcher.submit(items).map_err(|e| match e {
        SubmitError::Full => ApiError::overloaded(),
        SubmitError::Closed => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the service is shutting down; retry on another instance",
        ),
    })?;
    let results = tokio::time::timeout(state.request_timeout, rx)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "scoring did not finish in time; retry",
            )
        })?
        .map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "inference_failed",
                "the inference worker stopped",
            )
        })?;
    Ok(results
        .into_iter()
        .map(|r| r.map_err(ApiError::from))
        .collect())
}

pub async fn classify(
    State(state): State<Arc<AppState>>,
    ApiJson(req): ApiJson<ClassifyRequest>,
) -> Result<Json<Triage>, ApiError> {
    let mut out = score(&state, vec![req.into_complaint()]).await?;
    Ok(Json(out.pop().expect("one result")?))
}

pub async fn classify_batch(
    State(state): State<Arc<AppState>>,
    ApiJson(req): ApiJson<BatchRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let max = state.max_batch_items;
    if req.items.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_items",
            format!(
                "{} items sent; send at most {max} per request",
                req.items.len()
            ),
        ));
    }
    let items = req
        .items
        .into_iter()
        .map(ClassifyRequest::into_complaint)
        .collect();
    let results: Vec<serde_json::Value> = score(&state, items)
        .await?
        .into_iter()
        .map(|r| match r {
            Ok(t) => serde_json::to_value(t).expect("serialisable"),
            Err(e) => e.to_json(),
        })
        .collect();
    Ok(Json(serde_json::json!({ "results": results })))
}

async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&dyn CaseStore) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "a storage task failed",
            )
        })?
}

pub async fn create_case(
    State(state): State<Arc<AppState>>,
    Extension(actor): Extension<Actor>,
    ApiJson(req): ApiJson<ClassifyRequest>,
) -> Result<Response, ApiError> {
    if let Some(id) = req.id.clone() {
        if id.trim().is_empty() || id.len() > 128 {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_id",
                "`id` must be 1 to 128 characters",
            ));
        }
        if let Some(existing) = blocking(&state, move |s| Ok(s.get(&id)?)).await? {
            return Ok((StatusCode::OK, Json(existing)).into_response());
        }
    }
    let customer_id = req.customer_id.clone();
    let mut triage = score(&state, vec![req.into_complaint()])
        .await?
        .pop()
        .expect("one result")?;
    let mut repeat_of = None;
    let repeat_key = triage
        .label(&state.repeat_axis)
        .unwrap_or_default()
        .to_owned();
    if let Some(customer) = customer_id.clone() {
        let key = repeat_key.clone();
        let prior = blocking(&state, move |s| Ok(s.open_case_for(&customer, &key)?)).await?;
        if let Some(prior) = prior.filter(|p| *p != triage.id) {
            let evidence = format!(
                "open case {prior} of the same customer and {}",
                state.repeat_axis
            );
            state.engine.apply_signal(
                &mut triage,
                Signal {
                    name: state.repeat_signal.clone(),
                    evidence,
                },
            );
            repeat_of = Some(prior);
        }
    }
    let (case, created) = blocking(&state, move |s| {
        Ok(s.insert_if_absent(
            &triage,
            customer_id.as_deref(),
            &repeat_key,
            repeat_of.as_deref(),
            &actor.0,
        )?)
    })
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(case)).into_response())
}

pub async fn get_case(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let found = blocking(&state, {
        let id = id.clone();
        move |s| Ok(s.get(&id)?)
    })
    .await?;
    match found {
        Some(c) => Ok(Json(c).into_response()),
        None => Err(ApiError::not_found(format!("case `{id}` not found"))),
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    pub note: String,
}

pub async fn ack_case(
    State(state): State<Arc<AppState>>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let case = blocking(&state, move |s| {
        Ok(s.transition(&id, Transition::Acknowledge, &actor.0)?)
    })
    .await?;
    Ok(Json(case).into_response())
}

pub async fn resolve_case(
    State(state): State<Arc<AppState>>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ResolveRequest>,
) -> Result<Response, ApiError> {
    if req.note.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "note_required",
            "resolving a case needs a `note` saying how it was resolved",
        ));
    }
    let note = req.note;
    let case = blocking(&state, move |s| {
        Ok(s.transition(&id, Transition::Resolve { note }, &actor.0)?)
    })
    .await?;
    Ok(Json(case).into_response())
}

#[derive(Serialize)]
struct QueueView {
    queue: String,
    name: String,
    open: u64,
    acknowledged: u64,
    overdue: u64,
    nearest_deadline: Option<String>,
}

pub async fn list_queues(
    State(state): State<Arc<AppState>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let stats = blocking(&state, |s| Ok(s.queue_stats(Utc::now())?)).await?;
    let views: Vec<QueueView> = state
        .engine
        .config()
        .queues
        .iter()
        .map(|(q, name)| {
            let s = stats.iter().find(|s| &s.queue == q);
            QueueView {
                queue: q.clone(),
                name: name.clone(),
                open: s.map_or(0, |s| s.open),
                acknowledged: s.map_or(0, |s| s.acknowledged),
                overdue: s.map_or(0, |s| s.overdue),
                nearest_deadline: s.and_then(|s| s.nearest_deadline.clone()),
            }
        })
        .collect();
    Ok(Json(serde_json::json!({ "queues": views })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    #[serde(default = "default_limit")]
    limit: u32,
    #[serde(default)]
    offset: u32,
}

fn default_limit() -> u32 {
    50
}

pub async fn list_queue(
    State(state): State<Arc<AppState>>,
    Path(queue): Path<String>,
    Query(page): Query<Page>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !state.engine.config().queues.contains_key(&queue) {
        return Err(ApiError::not_found(format!(
            "queue `{queue}` does not exist; GET /v1/queues lists them"
        )));
    }
    let limit = page.limit.clamp(1, 500);
    let offset = page.offset;
    let q = queue.clone();
    let cases = blocking(&state, move |s| {
        Ok(s.list_queue(&q, limit, offset, Utc::now())?)
    })
    .await?;
    let next = (cases.len() as u32 == limit).then_some(offset + limit);
    Ok(Json(
        serde_json::json!({ "queue": queue, "cases": cases, "limit": limit, "offset": offset, "next_offset": next }),
    ))
}

pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let store = blocking(&state, |s| Ok(s.ping()?)).await;
    let m = state.engine.manifest();
    let body = serde_json::json!({
        "model": { "name": m.name, "version": m.version },
        "store": if store.is_ok() { "ok" } else { "unavailable" },
        "api_keys": state.keys_enabled,
    });
    let status = if store.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let stats = blocking(&state, |s| Ok(s.queue_stats(Utc::now())?))
        .await
        .unwrap_or_default();
    let queues: Vec<String> = state.engine.config().queues.keys().cloned().collect();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(&queues, &stats),
    )
        .into_response()
}

pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

pub async fn page() -> Html<&'static str> {
    Html(include_str!("page.html"))
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; GET /openapi.json lists them")
}

pub fn request_timeout(s: &str) -> Duration {
    crate::config::parse_duration(s)
        .ok()
        .and_then(|d| d.to_std().ok())
        .unwrap_or(Duration::from_secs(10))
}
