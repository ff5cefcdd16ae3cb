//! The dispatcher's timing on tokio's paused clock: the retry schedule with its jitter,
//! `Retry-After`, `disable_after` and the attempt timeout, each over minutes of virtual time
//! that take no time at all. The receiver is scripted (no socket), so that nothing but the
//! dispatcher's own timers moves the clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body_util::Full;
use hyper::{Request, StatusCode, Uri};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Dispatcher, Transport};
use crate::event::{Event, WireEvent};
use crate::scenario::{RetrySchedule, Sender, WebhookParams};
use crate::server::stats::Stats;

/// A scripted receiver: the answer to one request.
pub(super) type Script = Arc<
    dyn Fn(Request<Full<Bytes>>) -> BoxFuture<'static, anyhow::Result<(StatusCode, Option<Duration>)>>
        + Send
        + Sync,
>;

/// One answer of the scripted receiver: a status, a `Retry-After`, and how long it takes.
#[derive(Clone, Copy)]
struct Answer(u16, Option<Duration>, Duration);

/// Attempts the receiver saw: when (virtual time since the start) and for which message.
type Log = Arc<Mutex<Vec<(Duration, String)>>>;

/// A dispatcher whose one endpoint answers the `n`th attempt of each message (from 1) with
/// `answer(n)`, and the log of attempts.
fn dispatcher(
    retry: &[u64],
    disable_after: Option<Duration>,
    answer: impl Fn(usize) -> Answer + Send + Sync + 'static,
) -> (Dispatcher, Arc<Stats>, Log) {
    sender(Sender::Dispatcher, retry, disable_after, answer)
}

/// [`dispatcher`], or the raw sender in its place.
fn sender(
    sender: Sender,
    retry: &[u64],
    disable_after: Option<Duration>,
    answer: impl Fn(usize) -> Answer + Send + Sync + 'static,
) -> (Dispatcher, Arc<Stats>, Log) {
    with_params(params(sender, retry, disable_after), answer)
}

fn params(sender: Sender, retry: &[u64], disable_after: Option<Duration>) -> WebhookParams {
    WebhookParams {
        timeout: Duration::from_secs(10),
        retry: RetrySchedule::Custom(retry.iter().map(|s| Duration::from_secs(*s)).collect()),
        time_scale: 1.0,
        concurrency: 4,
        endpoint_concurrency: None,
        signing: false,
        backlog: crate::scenario::default_backlog(),
        sender,
        receiver_hosts: 1,
        receiver_fail_attempts: 0,
        disable_after,
    }
}

/// A dispatcher of `params` whose one endpoint answers as [`dispatcher`]'s does.
fn with_params(
    params: WebhookParams,
    answer: impl Fn(usize) -> Answer + Send + Sync + 'static,
) -> (Dispatcher, Arc<Stats>, Log) {
    let sender = params.sender;
    let log: Log = Arc::default();
    let (seen, start) = (log.clone(), Instant::now());
    let answer = Arc::new(answer);
    let script: Script = Arc::new(move |req: Request<Full<Bytes>>| {
        let signature = req.headers().get("webhook-signature").map(|v| v.len());
        assert_eq!(
            signature,
            (sender == Sender::Raw).then_some(SIGNED_LENGTH),
            "the raw sender's requests are a signed one's size; the unsigned dispatcher's carry no signature"
        );
        let id = req.headers()["webhook-id"].to_str().unwrap().to_string();
        let n = {
            let mut seen = seen.lock().unwrap();
            seen.push((start.elapsed(), id.clone()));
            seen.iter().filter(|(_, m)| *m == id).count()
        };
        let Answer(status, retry_after, takes) = answer(n);
        Box::pin(async move {
            tokio::time::sleep(takes).await;
            Ok((StatusCode::from_u16(status).unwrap(), retry_after))
        })
    });
    let stats = Arc::new(Stats::default());
    let d = Dispatcher::with_transport(
        Transport::Scripted(script),
        &params,
        1,
        10,
        stats.clone(),
        CancellationToken::new(),
    );
    d.subscribe(
        Uri::from_static("http://127.0.0.1:9/hook"),
        "127.0.0.1:9".into(),
        vec![0],
        None,
    )
    .unwrap();
    (d, stats, log)
}

fn event(id: u64) -> Arc<Event> {
    let wire = WireEvent {
        id,
        topic: 0,
        seq: id,
        scheduled_ns: 0,
        emitted_ns: 0,
        measured: true,
    };
    Arc::new(Event::new(wire, 0))
}

/// The gaps between one message's attempts, in seconds.
fn gaps(log: &Log, message: &str) -> Vec<f64> {
    let times: Vec<f64> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, m)| m == message)
        .map(|(t, _)| t.as_secs_f64())
        .collect();
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

/// Whether a gap between attempts is a `step` of the schedule within its ±20% jitter. Tokio's
/// timers fire on whole milliseconds, rounding a deadline up, so a gap may pass 1.2 × step by
/// up to a millisecond (and the subtraction of two clock readings by a rounding error).
fn within_jitter(gap: f64, step: f64) -> bool {
    (0.8 * step - 1e-6..=1.2 * step + 1e-3 + 1e-6).contains(&gap)
}

/// The length of a `webhook-signature` by one key, computed the way the dispatcher signs.
const SIGNED_LENGTH: usize = "v1,".len() + 32usize.div_ceil(3) * 4;

#[test]
fn a_signature_by_one_key_is_signed_length_long() {
    let (_, secret) = super::Secret::generate(&mut rand::thread_rng());
    assert_eq!(secret.sign("msg_1", 1_700_000_000, b"{}").len(), SIGNED_LENGTH);
}

#[tokio::test(start_paused = true)]
async fn the_raw_sender_posts_each_delivery_once_and_buries_a_failure_at_once() {
    let (d, stats, log) = sender(Sender::Raw, &[1, 5], None, |_| OK);
    for id in 1..=50 {
        d.dispatch(&event(id));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let w = stats
        .webhook
        .map(|_, c| c.load(std::sync::atomic::Ordering::Relaxed));
    assert_eq!((w.attempts, w.successes, w.retries, w.queued), (50, 50, 0, 0));
    assert_eq!(log.lock().unwrap().len(), 50);

    let (d, stats, log) = sender(Sender::Raw, &[1, 5], None, |_| DOWN);
    for id in 1..=50 {
        d.dispatch(&event(id));
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
    let w = stats
        .webhook
        .map(|_, c| c.load(std::sync::atomic::Ordering::Relaxed));
    assert_eq!(
        (w.attempts, w.failures, w.retries, w.dead_letters),
        (50, 50, 0, 50)
    );
    assert_eq!(log.lock().unwrap().len(), 50, "no retries");
    let dead = d.dead_letters();
    assert_eq!(dead.len(), 50);
    assert!(dead
        .iter()
        .all(|l| l.attempts == 1 && l.last_error.contains("does not retry")));
}

const OK: Answer = Answer(200, None, Duration::ZERO);
const DOWN: Answer = Answer(503, None, Duration::ZERO);

#[tokio::test(start_paused = true)]
async fn retries_follow_the_schedule_within_its_jitter() {
    let (d, stats, log) = dispatcher(&[1, 5, 30], None, |n| if n <= 3 { DOWN } else { OK });
    for id in 1..=200 {
        d.dispatch(&event(id));
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
    let w = stats
        .webhook
        .map(|_, c| c.load(std::sync::atomic::Ordering::Relaxed));
    assert_eq!(
        (w.attempts, w.retries, w.failures, w.successes),
        (800, 600, 600, 200)
    );
    assert_eq!((w.dead_letters, w.waiting, w.queued), (0, 0, 0));
    let mut first = Vec::new();
    for id in 1..=200 {
        let g = gaps(&log, &format!("msg_{id}"));
        assert_eq!(g.len(), 3);
        for (gap, step) in g.iter().zip([1.0, 5.0, 30.0]) {
            assert!(within_jitter(*gap, step), "msg_{id}: {gap} s for a {step} s step");
        }
        first.push(g[0]);
    }
    // The jitter is really there: 200 first retries spread over most of ±20%.
    let (lo, hi) = (
        first.iter().copied().fold(f64::MAX, f64::min),
        first.iter().copied().fold(0.0, f64::max),
    );
    assert!(lo < 0.85 && hi > 1.15, "first retries from {lo} to {hi} s");
}

#[tokio::test(start_paused = true)]
async fn a_longer_retry_after_is_obeyed_and_a_shorter_one_is_not() {
    let (d, stats, log) = dispatcher(&[1, 1], None, |n| match n {
        1 => Answer(503, Some(Duration::from_secs(120)), Duration::ZERO),
        2 => Answer(429, Some(Duration::ZERO), Duration::ZERO),
        _ => OK,
    });
    d.dispatch(&event(1));
    tokio::time::sleep(Duration::from_secs(300)).await;
    let g = gaps(&log, "msg_1");
    assert_eq!(g.len(), 2, "{g:?}");
    assert!(
        (g[0] - 120.0).abs() < 1e-6,
        "waited {} s after Retry-After: 120",
        g[0]
    );
    assert!(
        within_jitter(g[1], 1.0),
        "a Retry-After of 0 left the schedule's 1 s: {}",
        g[1]
    );
    let w = stats
        .webhook
        .map(|_, c| c.load(std::sync::atomic::Ordering::Relaxed));
    assert_eq!((w.retry_after_obeyed, w.successes, w.dead_letters), (1, 1, 0));
}

#[tokio::test(start_paused = true)]
async fn an_endpoint_failing_past_disable_after_is_disabled_and_owed_messages_are_dead_lettered() {
    let (d, stats, log) = dispatcher(&[1; 30], Some(Duration::from_secs(10)), |_| DOWN);
    d.dispatch(&event(1));
    tokio::time::sleep(Duration::from_secs(60)).await;
    let times: Vec<f64> = log.lock().unwrap().iter().map(|(t, _)| t.as_secs_f64()).collect();
    // The last attempt is the first one made 10 s or more after the first failure.
    let (last, before) = (times[times.len() - 1], times[times.len() - 2]);
    assert!(last >= 10.0 && before < 10.0, "attempts at {times:?}");
    let w = stats
        .webhook
        .map(|_, c| c.load(std::sync::atomic::Ordering::Relaxed));
    assert_eq!((w.disabled_endpoints, w.dead_letters), (1, 1));
    assert!(
        d.dead_letters()[0].last_error.ends_with("endpoint disabled"),
        "{:?}",
        d.dead_letters()
    );
    // What the endpoint is owed afterwards is dead-lettered without an attempt.
    d.dispatch(&event(2));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(log.lock().unwrap().len(), times.len());
    let letters = d.dead_letters();
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[1].last_error, "endpoint disabled: not sent");
}

#[tokio::test(start_paused = true)]
async fn an_answer_slower_than_the_timeout_is_a_timeout_and_is_retried() {
    let (d, stats, log) = dispatcher(&[2], None, |n| {
        if n == 1 {
            Answer(200, None, Duration::from_secs(30))
        } else {
            OK
        }
    });
    d.dispatch(&event(1));
    tokio::time::sleep(Duration::from_secs(60)).await;
    let w = stats
        .webhook
        .map(|_, c| c.load(std::sync::atomic::Ordering::Relaxed));
    assert_eq!((w.timeouts, w.failures, w.retries, w.successes), (1, 1, 1, 1));
    // Sent again 10 s (the timeout) plus the 2 s step (±20%) after the first attempt.
    let g = gaps(&log, "msg_1");
    assert!((11.6..=12.4).contains(&g[0]), "{g:?}");
}

/// 100 endpoints following one topic get 100 events/s for 3 s from 64 workers; endpoint 1
/// answers after 2 s, the others after 1 ms. Returns the 99 fast endpoints' p99 from dispatch
/// to their receiving each message, and how many messages the slow one received.
async fn one_slow_among_fast(endpoint_concurrency: Option<usize>) -> (Duration, usize) {
    let params = WebhookParams {
        timeout: Duration::from_secs(10),
        retry: RetrySchedule::Custom(Vec::new()),
        time_scale: 1.0,
        concurrency: 64,
        endpoint_concurrency,
        signing: false,
        backlog: crate::scenario::default_backlog(),
        sender: Sender::Dispatcher,
        receiver_hosts: 1,
        receiver_fail_attempts: 0,
        disable_after: None,
    };
    let start = Instant::now();
    let seen: Arc<Mutex<Vec<(Duration, bool, String)>>> = Arc::default();
    let log = seen.clone();
    let script: Script = Arc::new(move |req: Request<Full<Bytes>>| {
        let slow = req.uri().path() == "/hook/1";
        let id = req.headers()["webhook-id"].to_str().unwrap().to_string();
        log.lock().unwrap().push((start.elapsed(), slow, id));
        Box::pin(async move {
            let takes = if slow { 2000 } else { 1 };
            tokio::time::sleep(Duration::from_millis(takes)).await;
            Ok((StatusCode::OK, None))
        })
    });
    let d = Dispatcher::with_transport(
        Transport::Scripted(script),
        &params,
        1,
        1000,
        Arc::new(Stats::default()),
        CancellationToken::new(),
    );
    for n in 1..=100 {
        let uri = Uri::try_from(format!("http://127.0.0.1:9/hook/{n}")).unwrap();
        d.subscribe(uri, "127.0.0.1:9".into(), vec![0], None).unwrap();
    }
    let mut sent = std::collections::HashMap::new();
    for id in 1..=300 {
        sent.insert(format!("msg_{id}"), start.elapsed());
        d.dispatch(&event(id));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_secs(700)).await;
    let seen = seen.lock().unwrap();
    let mut fast: Vec<Duration> = seen
        .iter()
        .filter(|(_, slow, _)| !slow)
        .map(|(t, _, id)| *t - sent[id])
        .collect();
    assert_eq!(fast.len(), 99 * 300, "every fast delivery made once");
    fast.sort();
    (
        fast[fast.len() * 99 / 100],
        seen.iter().filter(|(_, slow, _)| *slow).count(),
    )
}

#[tokio::test(start_paused = true)]
async fn a_slow_endpoint_holds_only_its_share_of_the_workers() {
    // Its share is a quarter of the 64 workers: the other 99 keep 48 for the 10 or so they
    // need (9,900 deliveries/s of 1 ms), and the slow one still gets all 300 messages.
    let (p99, slow) = one_slow_among_fast(None).await;
    assert!(p99 < Duration::from_millis(50), "fast endpoints' p99 {p99:?}");
    assert_eq!(slow, 300);
    // Were it allowed every worker, it would take them all within 0.64 s (100/s, 2 s each),
    // and the others would wait behind it.
    let (p99, slow) = one_slow_among_fast(Some(64)).await;
    assert!(
        p99 > Duration::from_millis(500),
        "fast endpoints' p99 {p99:?} with no share"
    );
    assert_eq!(slow, 300);
}

#[test]
fn a_waiting_delivery_holds_24_bytes_in_the_queue_and_16_in_a_lane() {
    assert_eq!(std::mem::size_of::<super::Job>(), 24);
    assert_eq!(std::mem::size_of::<super::Waiting>(), 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_backlog_holds_the_generator_back_and_loses_nothing() {
    // 4 workers, all for the one endpoint, 2 ms an answer (3 at most on tokio's millisecond
    // timer): 1,333 to 2,000 deliveries a second. 600 events offered at once may wait 50 at
    // a time; the generator's thread is held while the other 550 go, 0.27 to 0.41 s.
    let mut p = params(Sender::Dispatcher, &[], None);
    p.backlog = 50;
    p.endpoint_concurrency = Some(4);
    let (d, stats, log) = with_params(p, |_| Answer(200, None, Duration::from_millis(2)));
    let w = stats.clone();
    let most = tokio::task::spawn_blocking(move || {
        let mut most = 0;
        for id in 1..=600 {
            d.dispatch(&event(id));
            let queued = w.webhook.queued.load(std::sync::atomic::Ordering::Relaxed);
            most = most.max(queued);
        }
        most
    })
    .await
    .unwrap();
    assert!(most <= 50, "the backlog reached {most}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while log.lock().unwrap().len() < 600 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(log.lock().unwrap().len(), 600, "every delivery made");
    let held = stats
        .webhook
        .intake_held_ns
        .load(std::sync::atomic::Ordering::Relaxed) as f64
        / 1e9;
    assert!((0.25..1.0).contains(&held), "held {held} s");
}
