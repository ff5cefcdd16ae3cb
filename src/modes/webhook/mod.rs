//! Webhook push: the server POSTs each event to each subscriber's URL.
//!
//! - [`dispatcher`]: the sender: signing, timeouts, retries with jitter, dead letters;
//! - [`signature`]: Standard Webhooks signatures and their verification;
//! - [`allowlist`]: which targets may be registered (SSRF);
//! - [`receiver`]: the driver's receivers, which verify, dedupe and record.
//!
//! Routes: `POST /webhooks` registers `{url, topics, secret}`; `GET /webhooks/dead-letters`
//! lists what was given up on; `POST /webhooks/dead-letters/replay` with `{}` (every endpoint)
//! or `{"subscription": "ep_3"}` re-enables the endpoints and sends their dead letters again;
//! `POST /webhooks/{id}/rotate` with `{"secret": "whsec_…", "grace": "24h"}` (both optional)
//! rotates an endpoint's secret, signing with both old and new for the grace period.

pub mod allowlist;
pub mod dispatcher;
pub mod receiver;
pub mod signature;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

pub use crate::api::{DeadLetter, Register, Registered};
pub use allowlist::Allowlist;
pub use dispatcher::Dispatcher;
use signature::Secret;

use super::{Given, Prediction};

use crate::scenario::{humane, Scenario};
use crate::server::extract::ApiJson;
use crate::server::{ApiError, AppState};

/// `POST /webhooks/{id}/rotate` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    /// The new secret; generated when absent.
    #[serde(default)]
    pub secret: Option<String>,
    /// How long the old secret keeps signing too (default 24 h, as Svix does).
    #[serde(default)]
    pub grace: Option<String>,
}

/// `POST /webhooks/dead-letters/replay` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    /// The endpoint whose dead letters to send again; every endpoint's when absent.
    #[serde(default)]
    pub subscription: Option<String>,
}

/// `POST /webhooks/dead-letters/replay` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Replayed {
    /// Dead letters queued again.
    pub replayed: usize,
}

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks", post(register))
        .route("/webhooks/dead-letters", get(dead_letters))
        .route("/webhooks/dead-letters/replay", post(replay))
        .route("/webhooks/{id}/rotate", post(rotate))
}

async fn rotate(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    ApiJson(req): ApiJson<Rotate>,
) -> Result<Json<Registered>, ApiError> {
    let run = state.run()?;
    known(&run, &id)?;
    let grace = match &req.grace {
        None => std::time::Duration::from_secs(24 * 3600),
        Some(g) => humane::parse(g).map_err(|e| ApiError::Unprocessable(format!("grace: {e}")))?,
    };
    let (text, secret) = match &req.secret {
        Some(s) => (
            s.clone(),
            Secret::parse(s).map_err(|e| ApiError::Unprocessable(format!("secret: {e}")))?,
        ),
        None => Secret::generate(&mut rand::thread_rng()),
    };
    run.webhooks
        .rotate(&id, secret, grace)
        .map_err(ApiError::Conflict)?;
    Ok(Json(Registered {
        id,
        secret: Some(text),
    }))
}

async fn replay(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<Replay>,
) -> Result<Json<Replayed>, ApiError> {
    let run = state.run()?;
    if let Some(id) = &req.subscription {
        known(&run, id)?;
    }
    Ok(Json(Replayed {
        replayed: run.webhooks.replay(req.subscription.as_deref()),
    }))
}

async fn register(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<Register>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    let run = state.run()?;
    let (uri, host) = state
        .allowlist
        .resolve(&req.url)
        .await
        .map_err(|e| ApiError::Unprocessable(format!("url: {e}")))?;
    crate::event::check_topics(&req.topics, run.log.topic_count())
        .map_err(|e| ApiError::Unprocessable(format!("topics: {e}")))?;
    let (text, secret) = match (&req.secret, run.webhooks.signing()) {
        (_, false) => (None, None),
        (Some(s), true) => (
            Some(s.clone()),
            Some(Secret::parse(s).map_err(|e| ApiError::Unprocessable(format!("secret: {e}")))?),
        ),
        (None, true) => {
            let (text, secret) = Secret::generate(&mut rand::thread_rng());
            (Some(text), Some(secret))
        }
    };
    let sub = run
        .webhooks
        .subscribe(uri, host, req.topics, secret)
        .map_err(ApiError::Conflict)?;
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            id: sub.id.clone(),
            secret: text,
        }),
    ))
}

/// A 404 unless `id` names a registered endpoint.
fn known(run: &crate::server::RunState, id: &str) -> Result<(), ApiError> {
    if run.webhooks.knows(id) {
        Ok(())
    } else {
        Err(ApiError::Status(
            StatusCode::NOT_FOUND,
            format!("no endpoint `{id}` is registered"),
        ))
    }
}

async fn dead_letters(State(state): State<AppState>) -> Result<Json<Vec<DeadLetter>>, ApiError> {
    Ok(Json(state.run()?.webhooks.dead_letters()))
}

/// One POST per event per subscriber, sent as soon as the event exists: latency is one HTTP
/// round trip; a receiver that fails its first k attempts costs k more requests per event.
pub fn predict(s: &Scenario, g: &Given) -> Prediction {
    let clients = s.clients.count as f64;
    let lambda = g.client_event_rate;
    let retries_available = s.webhook.retry.delays(s.webhook.time_scale).len() as u32;
    let fails = s.webhook.receiver_fail_attempts.min(retries_available);
    let per_delivery = 1.0 + fails as f64;
    let first_delay_ms: f64 = s
        .webhook
        .retry
        .delays(s.webhook.time_scale)
        .iter()
        .take(fails as usize)
        .map(|d| d.as_secs_f64() * 1000.0)
        .fold(0.0, |a, b| a + b);
    let rps = clients * lambda * per_delivery;
    let schedule = retry_schedule(s);
    Prediction {
        latency_p50_ms: first_delay_ms + g.push_ms(),
        latency_mean_ms: first_delay_ms + g.push_ms(),
        requests_per_second: rps,
        requests_per_delivery: per_delivery,
        empty_share: 0.0,
        connections: clients.min(s.webhook.concurrency as f64),
        explanation: format!(
            "The server POSTs each event to each subscriber as soon as it exists, so latency is the generator's \
             lateness ({:.3} ms) plus {} plus any retry delays: {per_delivery:.0} request(s) per \
             delivery ({fails} failed attempt(s) first, retried after {} in all), {rps:.1} requests/s for {clients:.0} \
             subscribers at λ = {lambda:.3} events/s each. No request is ever empty, and no connection is held \
             between events beyond the sender's keep-alive pool (at most {} deliveries at once). {schedule}",
            g.generator_ms,
            g.push_path_words(),
            humane::format(std::time::Duration::from_secs_f64(first_delay_ms / 1000.0)),
            s.webhook.concurrency
        ),
        given: *g,
    }
}

/// The retry schedule in words, with `time_scale` applied and said.
pub fn retry_schedule(s: &Scenario) -> String {
    use crate::scenario::{RetryPreset, RetrySchedule};
    let w = &s.webhook;
    let delays = w.retry.delays(w.time_scale);
    let what = match &w.retry {
        RetrySchedule::Preset(RetryPreset::Github) => {
            return "No automatic retry (the GitHub preset).".into()
        }
        RetrySchedule::Preset(RetryPreset::Standard) => "the Standard Webhooks preset",
        RetrySchedule::Custom(_) => "the scenario's own schedule",
    };
    let scaled = if w.time_scale == 1.0 {
        String::new()
    } else {
        format!(" scaled by time_scale = {}", w.time_scale)
    };
    let list: Vec<String> = delays.iter().map(|d| humane::format(*d)).collect();
    format!(
        "Retries follow {what}{scaled}: {} (each ±20%), then the dead-letter list.",
        list.join(", ")
    )
}
