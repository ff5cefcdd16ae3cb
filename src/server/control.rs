//! The control API the driver steers a run with: reset (configure a mode), start and stop the
//! generator, read stats, shut down.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};

use tokio::sync::oneshot;

use super::extract::ApiJson;
use super::generator::{self, Boundary};
use super::tcpinfo;
use super::{ApiError, AppState, RunState};
use crate::api::{Health, ResetRequest, StartRequest, StartResponse, StatsSnapshot, TcpReading, Window};
use crate::clock;
use crate::scenario::{Scenario, Schedule};

/// Where the generator of a run is.
pub(super) enum GeneratorState {
    Idle,
    Running(oneshot::Receiver<Window>),
    Done(Box<Window>),
}

/// What the public listener serves of this: health, for load balancers and people.
pub(super) fn public_router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz))
}

/// The control API, for the control listener only.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/stats", get(stats))
        .route("/control/reset", post(reset))
        .route("/control/start", post(start))
        .route("/control/stop", post(stop))
        .route("/control/handed", get(handed))
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

/// The name a posted scenario's errors give as its file.
pub const POSTED_SCENARIO: &str = "(scenario posted to /control/reset)";

async fn reset(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ResetRequest>,
) -> Result<StatusCode, ApiError> {
    let scenario = Scenario::parse_resolved(std::path::Path::new(POSTED_SCENARIO), &req.scenario)
        .map_err(|e| ApiError::Scenario(Box::new(e)))?;
    let run = RunState::new(
        scenario,
        req.mode,
        state.stats.clone(),
        &state.limits,
        &state.shutdown,
    );
    state.replace_run(Some(Arc::new(run)));
    state.stats.reset();
    Ok(StatusCode::NO_CONTENT)
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
    let span = generator::Span {
        start_ns,
        warmup: s.warmup,
        duration: s.duration,
    };
    let publisher = run.clone();
    let log_of = run.clone();
    let stats = state.stats.clone();
    let (done, handle) = oneshot::channel();
    let boundary_ns = |d: std::time::Duration| start_ns + u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let (warmup_end_ns, end_ns) = (boundary_ns(s.warmup), boundary_ns(s.warmup + s.duration));
    let census = tcpinfo::Watcher::spawn(stats.clone());
    // A thread of its own: a tokio timer ticks in whole milliseconds, and a worker thread is
    // shared with requests; both would make the instrument part of every latency.
    std::thread::Builder::new()
        .name("generator".into())
        .spawn(move || {
            let (mut at_warmup, mut at_end, mut log_bytes) = (None, None, 0);
            let mark_tcp = |at_ns| {
                if let Ok(w) = &census {
                    w.mark(at_ns);
                }
            };
            let emitted = generator::run(
                schedule,
                span,
                &stop,
                &stats.counters.generator_spin_ns,
                |t, at, m| {
                    publisher.publish(t, at, m);
                },
                |b| match b {
                    Boundary::WarmupEnd => {
                        at_warmup = Some(stats.snapshot());
                        mark_tcp(warmup_end_ns);
                    }
                    Boundary::End => {
                        at_end = Some(stats.snapshot());
                        mark_tcp(end_ns);
                        log_bytes = log_of.log.retained_bytes();
                    }
                },
            );
            if let (Some(at_warmup), Some(at_end)) = (at_warmup, at_end) {
                let opened = at_end.since(&at_warmup).counters.connections_opened;
                let tcp = match census {
                    Ok(w) => w.finish(opened),
                    Err(e) => TcpReading::Unavailable(format!("no thread to read TCP counters: {e}")),
                };
                let _ = done.send(Window {
                    emitted,
                    at_warmup,
                    at_end,
                    log_bytes,
                    tcp,
                });
            }
        })
        .map_err(|e| ApiError::Conflict(format!("cannot start the generator thread: {e}")))?;
    *gen = GeneratorState::Running(handle);
    run.start_ns.store(start_ns, std::sync::atomic::Ordering::Relaxed);
    run.started.cancel();
    Ok(Json(StartResponse { start_ns }))
}

/// Waits for the generator to finish its schedule and answers what it emitted, with the
/// counters at the window's two ends.
async fn stop(State(state): State<AppState>) -> Result<Json<Window>, ApiError> {
    let run = state.run()?;
    let mut gen = run.generator.lock().await;
    match std::mem::replace(&mut *gen, GeneratorState::Idle) {
        GeneratorState::Idle => Err(ApiError::Conflict("the generator has not been started".into())),
        GeneratorState::Running(handle) => {
            let window = handle.await.map_err(|_| {
                ApiError::Conflict("the generator was stopped before its schedule ended".into())
            })?;
            *gen = GeneratorState::Done(Box::new(window.clone()));
            Ok(Json(window))
        }
        GeneratorState::Done(window) => {
            *gen = GeneratorState::Done(window.clone());
            Ok(Json(*window))
        }
    }
}

/// What the server counted handing out to each client.
async fn handed(State(state): State<AppState>) -> Result<Json<super::Handed>, ApiError> {
    Ok(Json(state.run()?.handed_out()))
}

async fn shutdown(State(state): State<AppState>) -> impl IntoResponse {
    state.shutdown.cancel();
    StatusCode::ACCEPTED
}
