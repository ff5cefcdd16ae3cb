//! Short polling and conditional polling: `GET /events?topics=..&after=..&limit=..`.
//!
//! The server answers the events after the cursor, the next cursor and an `ETag` naming that
//! next cursor. A conditional poller sends the ETag back in `If-None-Match`; when nothing is
//! new the server answers `304 Not Modified` with no body (as GitHub's events API does, where
//! such answers do not count against the rate limit). Both get an `X-Poll-Interval` hint.
//! A cursor older than the log's retention gets `410 Gone` with where to resume.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::Empty;
use serde::{Deserialize, Serialize};

use super::http::{body_bytes, HttpConn};
use super::slots::Slots;
use super::{topics_and_cursor, ClientCtx, Given, Mode, Prediction};
use crate::clock::sleep_or_stop;
use crate::event::{format_topics, Cursor, Event, TopicId, WireEvent};
use crate::recorder::Ledger;
use crate::scenario::{humane, PollParams, PollSchedule, Scenario};
use crate::server::extract::ApiQuery;
use crate::server::{ApiError, AppState, RunState};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/events", get(events))
}

/// A page of events as clients decode it.
#[derive(Debug, Deserialize)]
pub struct Page {
    /// The events after the cursor (payloads skipped).
    pub events: Vec<WireEvent>,
    /// The cursor to ask with next.
    pub next: String,
    /// True when a full page was returned and more events wait.
    pub more: bool,
}

/// The body of a `410 Gone`.
#[derive(Debug, Serialize, Deserialize)]
pub struct GoneBody {
    /// What went wrong.
    pub error: String,
    /// The cursor to resume from: positions before the earliest events still held.
    pub resume: String,
}

/// The outcome of reading a page from the log.
pub(crate) enum PageRead {
    /// Events (maybe none), the next cursor, and whether more follow.
    Page(Vec<Arc<Event>>, Cursor, bool),
    /// The cursor has expired on some topic; resume from here.
    Gone(Cursor),
}

/// Reads up to `limit` events after `cursor` across `topics`.
pub(crate) fn read_page(run: &RunState, topics: &[TopicId], cursor: &Cursor, limit: usize) -> PageRead {
    let mut events = Vec::new();
    let mut next = cursor.clone();
    let mut more = false;
    let mut resume: Option<Cursor> = None;
    for (i, (&topic, &after)) in topics.iter().zip(&cursor.0).enumerate() {
        match run.log.read_after(topic, after, limit - events.len()) {
            Ok((page, has_more)) => {
                if let Some(last) = page.last() {
                    next.0[i] = last.seq;
                }
                more |= has_more;
                events.extend(page);
            }
            Err(gone) => resume.get_or_insert_with(|| cursor.clone()).0[i] = gone.earliest - 1,
        }
        if events.len() >= limit {
            more |= i + 1 < topics.len();
            break;
        }
    }
    match resume {
        Some(r) => PageRead::Gone(r),
        None => PageRead::Page(events, next, more),
    }
}

/// `{"events":[...],"next":"..","more":..}`, splicing the pre-encoded event JSON.
pub(crate) fn encode_page(events: &[Arc<Event>], next: &Cursor, more: bool) -> Bytes {
    let size: usize = events.iter().map(|e| e.json.len() + 1).sum();
    let mut out = BytesMut::with_capacity(size + 64);
    out.put_slice(b"{\"events\":[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(&e.json);
    }
    out.put_slice(format!("],\"next\":\"{next}\",\"more\":{more}}}").as_bytes());
    out.freeze()
}

/// The 410 answer for an expired cursor.
pub(crate) fn gone_response(resume: &Cursor) -> Response {
    let body = GoneBody {
        error: "cursor expired: events after it are no longer retained".into(),
        resume: resume.to_string(),
    };
    (StatusCode::GONE, axum::Json(body)).into_response()
}

/// Reads `limit` from the query: 1 to 100, `default` when absent.
pub(crate) fn limit_param(query: &HashMap<String, String>, default: u32) -> Result<usize, ApiError> {
    match query.get("limit") {
        None => Ok(default as usize),
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => Ok(n),
            _ => Err(ApiError::BadRequest(format!(
                "`limit` must be a whole number from 1 to 100, found {l:?}"
            ))),
        },
    }
}

/// The server's hint, in seconds, of how often to poll.
pub const X_POLL_INTERVAL: header::HeaderName = header::HeaderName::from_static("x-poll-interval");

fn etag(cursor: &Cursor) -> HeaderValue {
    let tag = format!("\"{}\"", cursor.to_string().replace(',', "."));
    HeaderValue::from_str(&tag).expect("digits and dots are a valid header")
}

fn etag_matches(if_none_match: &HeaderValue, tag: &HeaderValue) -> bool {
    let Ok(list) = if_none_match.to_str() else {
        return false;
    };
    let tag = tag.to_str().expect("ascii");
    list.split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == tag || t.strip_prefix("W/") == Some(tag))
}

async fn events(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let run = state.run()?;
    let (topics, cursor) = topics_and_cursor(&query, run.log.topic_count())?;
    let params = if run.mode == Mode::ConditionalPoll {
        &run.scenario.conditional_poll
    } else {
        &run.scenario.poll
    };
    let limit = limit_param(&query, params.limit)?;
    let client = super::client_id(&query)?;
    let hint = HeaderValue::from_str(&format!("{:.3}", params.interval.as_secs_f64())).expect("number");

    if let Some(inm) = headers.get(header::IF_NONE_MATCH) {
        let nothing_new = !topics
            .iter()
            .zip(&cursor.0)
            .any(|(t, a)| run.log.has_news(*t, *a));
        let tag = etag(&cursor);
        if nothing_new && etag_matches(inm, &tag) {
            state.stats.counters.empty_responses.fetch_add(1, Relaxed);
            return Ok((
                StatusCode::NOT_MODIFIED,
                [(header::ETAG, tag), (X_POLL_INTERVAL, hint)],
            )
                .into_response());
        }
    }
    match read_page(&run, &topics, &cursor, limit) {
        PageRead::Gone(resume) => Ok(gone_response(&resume)),
        PageRead::Page(events, next, more) => {
            if events.is_empty() {
                state.stats.counters.empty_responses.fetch_add(1, Relaxed);
            }
            run.handed(client, &events);
            let headers = [
                (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
                (header::ETAG, etag(&next)),
                (X_POLL_INTERVAL, hint),
            ];
            Ok((headers, encode_page(&events, &next, more)).into_response())
        }
    }
}

/// What a poll request came to, for the client loop.
pub(crate) enum Fetched {
    /// A page was applied; poll again at once if `more`.
    Page { more: bool },
    /// 304: nothing new.
    NotModified,
    /// 410: the cursor was moved past the gap; ask again at once.
    Gone,
    /// The request failed (counted).
    Failed,
}

/// Applies one pull response (a page, 304, or 410) to the client's ledger and cursor.
pub(crate) async fn apply_response(
    res: anyhow::Result<hyper::Response<hyper::body::Incoming>>,
    ledger: &mut Ledger,
    cursor: &mut Cursor,
    etag: &mut Option<HeaderValue>,
    interval: &mut Option<Duration>,
) -> Fetched {
    let Ok(res) = res else {
        ledger.counts.errors += 1;
        return Fetched::Failed;
    };
    if let Some(hint) = res
        .headers()
        .get(X_POLL_INTERVAL)
        .and_then(|h| h.to_str().ok()?.parse::<f64>().ok())
    {
        if hint > 0.0 && hint.is_finite() {
            *interval = Some(Duration::from_secs_f64(hint));
        }
    }
    let status = res.status();
    let new_etag = res.headers().get(header::ETAG).cloned();
    if status == StatusCode::NOT_MODIFIED {
        return Fetched::NotModified;
    }
    let Ok(body) = body_bytes(res).await else {
        ledger.counts.errors += 1;
        return Fetched::Failed;
    };
    match status {
        StatusCode::OK => match serde_json::from_slice::<Page>(&body) {
            Ok(page) => {
                for ev in &page.events {
                    ledger.observe(ev);
                }
                match page.next.parse() {
                    Ok(next) => *cursor = next,
                    Err(_) => ledger.counts.errors += 1,
                }
                *etag = new_etag;
                Fetched::Page { more: page.more }
            }
            Err(_) => {
                ledger.counts.errors += 1;
                Fetched::Failed
            }
        },
        StatusCode::GONE => {
            match serde_json::from_slice::<GoneBody>(&body).map(|g| g.resume.parse::<Cursor>()) {
                Ok(Ok(resume)) if resume.0.len() == cursor.0.len() => {
                    for (i, (&from, &to)) in cursor.0.iter().zip(&resume.0).enumerate() {
                        if to > from {
                            ledger.gap(i, from, to + 1);
                        }
                    }
                    *cursor = resume;
                    *etag = None;
                    Fetched::Gone
                }
                _ => {
                    ledger.counts.errors += 1;
                    Fetched::Failed
                }
            }
        }
        _ => {
            ledger.counts.errors += 1;
            Fetched::Failed
        }
    }
}

/// A poller: at a random phase, then on its schedule (fixed slots, or an interval after each
/// answer), fetch what is new.
pub async fn client(mut ctx: ClientCtx, conditional: bool) -> Ledger {
    let params: PollParams = if conditional {
        ctx.scenario.conditional_poll.clone()
    } else {
        ctx.scenario.poll.clone()
    };
    let mut conn = HttpConn::new(ctx.server);
    let topics = format_topics(&ctx.ledger.topics);
    let mut cursor = Cursor::start(ctx.ledger.topics.len());
    let mut etag = None;
    let mut hinted = None;
    // Slots count in ns from the client's start.
    let began = std::time::Instant::now();
    let since_start = || began.elapsed().as_nanos() as u64;
    let mut slots = Slots::new(&params, since_start(), &mut ctx.rng);
    'run: loop {
        let interval = hinted.unwrap_or(params.interval);
        let slot = began + Duration::from_nanos(slots.next(interval, since_start(), &mut ctx.rng));
        if sleep_or_stop(
            slot.saturating_duration_since(std::time::Instant::now()),
            &ctx.stop,
        )
        .await
        {
            break;
        }
        if params.schedule == PollSchedule::Fixed {
            let late = std::time::Instant::now().saturating_duration_since(slot);
            ctx.ledger.recorder().poll_sent(late.as_nanos() as u64);
        }
        loop {
            // A paused client asks nothing; the request's trip may take added latency.
            if ctx.before_request().await {
                break 'run;
            }
            let mut req = conn.get(&format!(
                "/events?topics={topics}&after={cursor}&limit={}&client={}",
                params.limit, ctx.id
            ));
            if let (true, Some(tag)) = (conditional, &etag) {
                req = req.header(header::IF_NONE_MATCH, tag);
            }
            ctx.ledger.counts.requests += 1;
            let res = conn.send(req.body(Empty::new()).expect("valid request")).await;
            // The answer's trip; an answer that lands during a pause is read after it.
            if ctx.after_answer().await {
                break 'run;
            }
            match apply_response(res, &mut ctx.ledger, &mut cursor, &mut etag, &mut hinted).await {
                Fetched::Page { more: true } | Fetched::Gone => continue,
                _ => break,
            }
        }
    }
    ctx.ledger.counts.reconnects = conn.connects.saturating_sub(1);
    ctx.ledger
}

/// `sinh(x) / x`, 1 at 0: what a uniform spread of ± x does to `E[e^(−X)]`.
pub(crate) fn sinhc(x: f64) -> f64 {
    if x.abs() < 1e-9 {
        1.0
    } else {
        x.sinh() / x
    }
}

/// A poller's gap between polls is G (T on a fixed schedule, T plus a round trip after each
/// answer, either way spread by the jitter). A poll finds nothing when no event came
/// in its gap: `E[e^(−λG)]` for Poisson arrivals at λ per client. An event waits for the next
/// poll, on average `E[G²] / 2E[G]`, then the answer's trip; clients ask `N / E[G]` times a
/// second, whatever happens. The server closes a connection that waits longer than
/// [`HEADER_READ_TIMEOUT`](crate::api::HEADER_READ_TIMEOUT) for its next request, so each
/// client holds one `E[min(G, timeout)] / E[G]` of the time.
pub fn predict(s: &Scenario, p: &PollParams, conditional: bool, g: &Given) -> Prediction {
    let t = p.interval.as_secs_f64();
    let lambda = g.client_event_rate;
    let clients = s.clients.count as f64;
    let spread = sinhc(lambda * t * p.jitter);
    // Gap mean, gap variance, and E[e^(−λ·jitter part)].
    let (period, variance, jitter_factor, how_often) = match p.schedule {
        // G = T + J₂ − J₁: two independent jitters of ± jT.
        PollSchedule::Fixed => (
            t,
            2.0 * (p.jitter * t).powi(2) / 3.0,
            spread * spread,
            format!("on fixed slots every {}", humane::format(p.interval)),
        ),
        // G = T(1 ± j) + a round trip.
        PollSchedule::AfterAnswer => (
            t + g.round_trip_ms / 1000.0,
            (p.jitter * t).powi(2) / 3.0,
            spread,
            format!("{} after each answer", humane::format(p.interval)),
        ),
    };
    let empty = (-lambda * period).exp() * jitter_factor;
    let held = held_share(
        p,
        t,
        g.round_trip_ms / 1000.0,
        crate::api::HEADER_READ_TIMEOUT.as_secs_f64(),
    );
    let rps = clients / period;
    let wait_ms = (period * period + variance) / (2.0 * period) * 1000.0;
    // The answer's way back is half a round trip.
    let answer_ms = g.generator_ms + g.round_trip_ms / 2.0;
    let latency = wait_ms + answer_ms;
    let how = if conditional {
        "answered 304 with no body"
    } else {
        "answered with an empty page"
    };
    Prediction {
        latency_p50_ms: period * 500.0 + answer_ms,
        latency_mean_ms: latency,
        requests_per_second: rps,
        requests_per_delivery: if lambda > 0.0 { 1.0 / (lambda * period) } else { f64::INFINITY },
        empty_share: empty,
        connections: clients * held,
        explanation: format!(
            "Each client polls {how_often} (± {:.0}%), so an event waits for the next poll: half the gap at the median, \
             {:.0} ms, plus the answer's way back (half the {} {:.3} ms round trip) and the generator's \
             lateness ({:.3} ms). {clients:.0} \
             clients make {rps:.1} requests/s whatever happens. Each client was owed λ = {lambda:.3} events/s, so a poll \
             finds nothing with probability E[e^(−λG)] = e^(−λT) × {jitter_factor:.3} (the jitter's spread) = {:.1}%; \
             those are {how}. Requests per event: 1/(λ × {period:.3} s) = {:.2}.{}",
            p.jitter * 100.0,
            period * 500.0,
            g.round_trip_was(),
            g.round_trip_ms,
            g.generator_ms,
            empty * 100.0,
            if lambda > 0.0 { 1.0 / (lambda * period) } else { f64::INFINITY },
            if held < 1.0 {
                format!(
                    " The server closes a connection that waits {} for its next request, so a client holds one \
                     E[min(G, {0})] / E[G] = {:.1}% of the time, and opens one for each poll after a longer gap.",
                    humane::format(crate::api::HEADER_READ_TIMEOUT),
                    held * 100.0
                )
            } else {
                String::new()
            },
        ),
        given: *g,
    }
}

/// The share of the time a poller holds its connection, `E[min(G, idle)] / E[G]` (seconds),
/// over its gap G: on a fixed schedule `t` + two independent jitters of ± jitter × `t`, after
/// answers `t` × (1 ± jitter) + the round trip. Taken over a grid of the jitters' midpoints.
fn held_share(p: &PollParams, t: f64, round_trip: f64, idle: f64) -> f64 {
    const N: usize = 200;
    let u = |i: usize| (i as f64 + 0.5) / N as f64 * 2.0 - 1.0;
    let j = p.jitter * t;
    let gaps: Vec<f64> = match p.schedule {
        PollSchedule::Fixed => (0..N * N).map(|k| t + (u(k % N) - u(k / N)) * j).collect(),
        PollSchedule::AfterAnswer => (0..N).map(|k| t + u(k) * j + round_trip).collect(),
    };
    let mean: f64 = gaps.iter().sum::<f64>() / gaps.len() as f64;
    let held: f64 = gaps.iter().map(|g| g.min(idle)).sum::<f64>() / gaps.len() as f64;
    if mean <= 0.0 {
        1.0
    } else {
        (held / mean).min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poller_holds_its_connection_for_the_part_of_each_gap_the_server_waits() {
        let params = |schedule: &str, jitter: f64| {
            let s = crate::scenario::Scenario::parse(
                std::path::Path::new("h.toml"),
                &format!("name = \"h\"\nduration = \"1s\"\n[events]\nrate = 1\n[clients]\ncount = 1\n[poll]\nschedule = \"{schedule}\"\njitter = {jitter}\n"),
            )
            .unwrap();
            s.poll
        };
        // By hand: gaps of 300 s, closed after 30: a tenth; gaps of 20 s: all of the time.
        assert!((held_share(&params("fixed", 0.0), 300.0, 0.0, 30.0) - 0.1).abs() < 1e-12);
        assert_eq!(held_share(&params("fixed", 0.1), 20.0, 0.0, 30.0), 1.0);
        // Gaps uniform over 15 to 45 s: E[min(G, 30)] = (30² − 15²) / 2 / 30 + 30 / 2 = 26.25.
        let straddling = held_share(&params("after_answer", 0.5), 30.0, 0.0, 30.0);
        assert!((straddling - 26.25 / 30.0).abs() < 1e-4, "{straddling}");
    }

    #[test]
    fn etag_matching_follows_if_none_match_rules() {
        let tag = etag(&Cursor(vec![5, 7]));
        assert_eq!(tag, "\"5.7\"");
        assert!(etag_matches(&HeaderValue::from_static("\"5.7\""), &tag));
        assert!(etag_matches(
            &HeaderValue::from_static("\"1.1\", W/\"5.7\""),
            &tag
        ));
        assert!(etag_matches(&HeaderValue::from_static("*"), &tag));
        assert!(!etag_matches(&HeaderValue::from_static("\"5.8\""), &tag));
    }
}
