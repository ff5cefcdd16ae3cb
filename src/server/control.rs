//! The control API the driver steers a run with: reset (configure a mode), start and stop the
//! generator, read stats, shut down.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::extract::ApiJson;
use super::generator::{self, Emitted, Schedule};
use super::stats::StatsSnapshot;
use super::{ApiError, AppState, RunState};
use crate::clock;
use crate::modes::Mode;
use crate::scenario::Scenario;

/// Where the generator of a run is.
pub(super) enum GeneratorState {
    Idle,
    Running(JoinHandle<Emitted>),
    Done(Emitted),
}

/// `POST /control/reset`: configure a fresh run of one mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResetRequest {
    /// The scenario (validated by the driver).
    pub scenario: Scenario,
    /// The mode about to run.
    pub mode: Mode,
}

/// `POST /control/start`'s body (or `null`, to start now).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct StartRequest {
    /// CLOCK_MONOTONIC ns to count the schedule from: lets the driver know the start exactly
    /// before the first event exists. It must lie within 10 s of the server's now.
    pub start_ns: u64,
}

/// `POST /control/start`'s answer.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct StartResponse {
    /// CLOCK_MONOTONIC ns the schedule counts from.
    pub start_ns: u64,
}

/// `GET /healthz`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    /// Always `"ok"`.
    pub status: String,
    /// The server's CLOCK_MONOTONIC now, in ns.
    pub now_ns: u64,
    /// The server's version.
    pub version: String,
}

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/stats", get(stats))
        .route("/control/reset", post(reset))
        .route("/control/start", post(start))
        .route("/control/stop", post(stop))
        .route("/control/shutdown", post(shutdown))
}

async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        now_ns: clock::now_ns(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

async fn stats(State(state): State<AppState>) -> Json<StatsSnapshot> {
    Json(state.stats.snapshot())
}

async fn reset(State(state): State<AppState>, ApiJson(req): ApiJson<ResetRequest>) -> StatusCode {
    let run = RunState::new(
        req.scenario,
        req.mode,
        state.stats.clone(),
        &state.limits,
        &state.shutdown,
    );
    state.replace_run(Some(Arc::new(run)));
    state.stats.reset();
    StatusCode::NO_CONTENT
}

async fn start(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<Option<StartRequest>>,
) -> Result<Json<StartResponse>, ApiError> {
    let run = state.run()?;
    let now = clock::now_ns();
    let start_ns = match req {
        None => now,
        Some(StartRequest { start_ns }) if start_ns.abs_diff(now) <= 10_000_000_000 => start_ns,
        Some(StartRequest { start_ns }) => {
            return Err(ApiError::Unprocessable(format!(
                "start_ns {start_ns} is {:.1} s from the server's clock ({now}): it must lie within 10 s",
                start_ns.abs_diff(now) as f64 / 1e9
            )))
        }
    };
    let mut gen = run.generator.lock().await;
    if !matches!(*gen, GeneratorState::Idle) {
        return Err(ApiError::Conflict(
            "the generator has already been started in this run".into(),
        ));
    }
    let stop = run.cancel.child_token();
    let s = &run.scenario;
    let schedule = Schedule::new(&s.events, s.seed);
    let (warmup, duration) = (s.warmup, s.duration);
    let publisher = run.clone();
    let handle = tokio::spawn(generator::run(
        schedule,
        start_ns,
        warmup,
        duration,
        stop.clone(),
        move |t, at, m| {
            publisher.publish(t, at, m);
        },
    ));
    *gen = GeneratorState::Running(handle);
    run.start_ns.store(start_ns, std::sync::atomic::Ordering::Relaxed);
    run.started.cancel();
    Ok(Json(StartResponse { start_ns }))
}

/// Waits for the generator to finish its schedule and answers what it emitted.
async fn stop(State(state): State<AppState>) -> Result<Json<Emitted>, ApiError> {
    let run = state.run()?;
    let mut gen = run.generator.lock().await;
    match std::mem::replace(&mut *gen, GeneratorState::Idle) {
        GeneratorState::Idle => Err(ApiError::Conflict("the generator has not been started".into())),
        GeneratorState::Running(handle) => {
            let emitted = handle
                .await
                .map_err(|e| ApiError::Conflict(format!("generator failed: {e}")))?;
            *gen = GeneratorState::Done(emitted.clone());
            Ok(Json(emitted))
        }
        GeneratorState::Done(emitted) => {
            *gen = GeneratorState::Done(emitted.clone());
            Ok(Json(emitted))
        }
    }
}

async fn shutdown(State(state): State<AppState>) -> impl IntoResponse {
    state.shutdown.cancel();
    StatusCode::ACCEPTED
}
