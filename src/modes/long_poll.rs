//! Long polling: `GET /long-poll?topics=..&after=..&wait=30s`.
//!
//! The server holds the request until an event arrives on one of the client's topics or the
//! wait ends (plus up to wait/16 of jitter, as Consul does, so held requests do not all expire
//! together); an empty answer is normal and the client asks again at once.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::future::select_all;
use http_body_util::Empty;
use rand::Rng;

use super::http::{retry_after, HttpConn, BUSY_RETRY_AFTER};
use super::poll::{apply_response, encode_page, gone_response, limit_param, read_page, Fetched, PageRead};
use super::{topics_and_cursor, ClientCtx, Given, Prediction};
use crate::event::{format_topics, Cursor};
use crate::recorder::Ledger;
use crate::scenario::{humane, Scenario};
use crate::server::extract::ApiQuery;
use crate::server::stats::GaugeGuard;
use crate::server::{ApiError, AppState};

/// The longest wait a client may ask for (Consul's cap).
pub const MAX_WAIT: Duration = Duration::from_secs(600);

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/long-poll", get(long_poll))
}

async fn long_poll(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let run = state.run()?;
    let (topics, cursor) = topics_and_cursor(&query, run.log.topic_count())?;
    let limit = limit_param(&query, run.scenario.long_poll.limit)?;
    let client = super::client_id(&query)?;
    let _slot = run.open_for(client)?;
    let wait = match query.get("wait") {
        None => run.scenario.long_poll.wait,
        Some(w) => humane::parse(w)
            .map_err(|e| ApiError::BadRequest(format!("`wait`: {e}")))?
            .min(MAX_WAIT),
    };
    let jitter = wait.mul_f64(rand::thread_rng().gen_range(0.0..1.0 / 16.0));
    let deadline = tokio::time::Instant::now() + wait + jitter;
    // Subscribe before reading, so an event published in between still wakes us.
    let mut watches: Vec<_> = topics.iter().map(|t| run.log.watch(*t)).collect();
    let _held = GaugeGuard::new(&state.stats.counters.held_long_polls);
    let held = state
        .stats
        .counters
        .held_long_polls
        .load(std::sync::atomic::Ordering::Relaxed);
    if held > state.limits.max_held_long_polls {
        return Err(ApiError::Busy(
            format!(
                "{} long polls are held already, the most this server holds; ask again shortly",
                held - 1
            ),
            BUSY_RETRY_AFTER.as_secs(),
        ));
    }
    loop {
        match read_page(&run, &topics, &cursor, limit) {
            PageRead::Gone(resume) => return Ok(gone_response(&resume)),
            PageRead::Page(events, next, more) if !events.is_empty() => {
                run.handed(client, &events);
                return Ok(page_response(encode_page(&events, &next, more)));
            }
            PageRead::Page(..) => {}
        }
        let changed = select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep_until(deadline) => break,
            _ = run.cancel.cancelled() => break,
        }
    }
    state.stats.counters.empty_responses.fetch_add(1, Relaxed);
    Ok(page_response(encode_page(&[], &cursor, false)))
}

fn page_response(body: bytes::Bytes) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}

/// How long a long-poll client waits at least after a failed request (a 503 from a server
/// holding its most, a broken connection) before it asks again.
pub const FAILED_PAUSE: Duration = Duration::from_millis(50);

/// How long a long-poll client waits after a failed request: the server's `Retry-After` if it
/// sent one, never less than [`FAILED_PAUSE`].
pub fn pause_after_failure(asked: Option<Duration>) -> Duration {
    asked.unwrap_or_default().max(FAILED_PAUSE)
}

/// A long poller: ask, wait for the answer, apply it, ask again at once.
pub async fn client(mut ctx: ClientCtx) -> Ledger {
    let mut conn = HttpConn::new(ctx.server);
    let topics = format_topics(&ctx.ledger.topics);
    let wait = humane::format(ctx.scenario.long_poll.wait).replace(' ', "");
    let limit = ctx.scenario.long_poll.limit;
    let mut cursor = Cursor::start(ctx.ledger.topics.len());
    let (mut etag, mut hint) = (None, None);
    loop {
        // A paused client asks nothing; the request's trip may take added latency.
        if ctx.before_request().await {
            break;
        }
        let req = conn.get(&format!(
            "/long-poll?topics={topics}&after={cursor}&limit={limit}&wait={wait}&client={}",
            ctx.id
        ));
        ctx.ledger.counts.requests += 1;
        let res = tokio::select! {
            res = conn.send(req.body(Empty::new()).expect("valid request")) => res,
            _ = ctx.stop.cancelled() => break,
        };
        // The answer's trip; an answer that lands during a pause is read after it.
        if ctx.after_answer().await {
            break;
        }
        let asked = res
            .as_ref()
            .ok()
            .and_then(|r| r.headers().get(header::RETRY_AFTER))
            .and_then(retry_after);
        if let Fetched::Failed = apply_response(res, &mut ctx.ledger, &mut cursor, &mut etag, &mut hint).await
        {
            // Do not spin on a failing server; wait as long as it asks.
            if crate::clock::sleep_or_stop(pause_after_failure(asked), &ctx.stop).await {
                break;
            }
        }
    }
    ctx.ledger.counts.reconnects = conn.connects.saturating_sub(1);
    ctx.ledger
}

/// A held request answers as soon as an event exists, so latency is the generator's lateness
/// plus the path of one small round trip. Each request is a cycle that ends with the client's next event or with its
/// wait W plus the server's jitter U(0, W/16), whichever comes first; it ends empty with
/// probability `p = E[e^(−λ(W + U))] = e^(−λW) (1 − e^(−λW/16)) / (λW/16)`. Every event ends
/// one cycle, so a client makes `1 / (1 − p)` requests per event, `p` of them empty.
pub fn predict(s: &Scenario, g: &Given) -> Prediction {
    let lambda = g.client_event_rate;
    let w = s.long_poll.wait.as_secs_f64();
    let clients = s.clients.count as f64;
    let x = lambda * w / 16.0;
    let empty = (-lambda * w).exp() * if x > 1e-12 { (1.0 - (-x).exp()) / x } else { 1.0 };
    let per_event = if empty < 1.0 {
        1.0 / (1.0 - empty)
    } else {
        f64::INFINITY
    };
    let rps = clients * lambda * per_event;
    Prediction {
        latency_p50_ms: g.push_ms(),
        latency_mean_ms: g.push_ms(),
        requests_per_second: rps,
        requests_per_delivery: per_event,
        empty_share: empty,
        connections: clients,
        explanation: format!(
            "The server holds each request until an event arrives, so the news leaves at once: latency is the \
             generator's lateness ({:.3} ms) plus {}. A request ends empty when no event \
             comes within its wait W = {} plus the server's jitter of up to W/16: with λ = {lambda:.3} events/s per \
             client, p = e^(−λW) × (1 − e^(−λW/16))/(λW/16) = {:.1}% (e^(−λW) = {:.1}% without the jitter). Every \
             event ends one request, so a client makes 1/(1 − p) = {per_event:.3} requests per event, {rps:.1} \
             requests/s in all. Every client holds one request open: {clients:.0} connections.",
            g.generator_ms,
            g.push_path_words(),
            humane::format(s.long_poll.wait),
            empty * 100.0,
            (-lambda * w).exp() * 100.0
        ),
        given: *g,
    }
}
