//! The server's HTTP API, spoken to directly: cursors, ETags, 410s, bad requests, webhook
//! registration, and the receiver's verification.

use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;

use pushpull::clock;
use pushpull::modes::webhook::receiver::{ReceiverClient, Receivers};
use pushpull::modes::webhook::signature::Secret;
use pushpull::modes::Mode;
use pushpull::recorder::{Ledger, Recorder};
use reqwest::StatusCode;
use serde_json::Value;

use crate::util::{tiny, TestServer};

async fn publish(server: &TestServer, topic: u32, n: usize) {
    let run = server.state.run().unwrap();
    for _ in 0..n {
        run.publish(topic, clock::now_ns(), true);
    }
}

#[tokio::test]
async fn poll_pages_after_a_cursor_and_answers_304_when_nothing_is_new() {
    let server = TestServer::start().await;
    server
        .reset(
            &tiny("conditional_poll", "rate = 5\ntopics = 2", ""),
            Mode::ConditionalPoll,
        )
        .await;
    publish(&server, 1, 3).await;
    let res = server
        .http
        .get(server.url("/events?topics=0,1&after=0,1&limit=100"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let etag = res.headers()["etag"].clone();
    assert_eq!(etag, "\"0.3\"");
    assert!(res.headers().contains_key("x-poll-interval"));
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    assert_eq!(page["next"], "0,3");

    let again = server
        .http
        .get(server.url("/events?topics=0,1&after=0,3"))
        .header("if-none-match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.bytes().await.unwrap().is_empty());

    publish(&server, 0, 1).await;
    let news = server
        .http
        .get(server.url("/events?topics=0,1&after=0,3"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(news.status(), StatusCode::OK);
}

#[tokio::test]
async fn expired_cursor_gets_410_with_where_to_resume() {
    let server = TestServer::start().await;
    let s = tiny("poll", "rate = 5\ntopics = 1\n[events.retention]\ncount = 3", "");
    server.reset(&s, Mode::Poll).await;
    publish(&server, 0, 10).await;
    let res = server
        .http
        .get(server.url("/events?topics=0&after=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::GONE);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["resume"], "7");
    assert!(body["error"].as_str().unwrap().contains("expired"));
    let ok = server
        .http
        .get(server.url("/events?topics=0&after=7"))
        .send()
        .await
        .unwrap();
    let page: Value = ok.json().await.unwrap();
    assert_eq!(page["events"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn bad_requests_get_400_with_a_json_reason() {
    let server = TestServer::start().await;
    server
        .reset(&tiny("poll", "rate = 5\ntopics = 2", ""), Mode::Poll)
        .await;
    for (path, needle) in [
        ("/events", "missing query parameter `topics`"),
        ("/events?topics=9", "topic 9 does not exist"),
        ("/events?topics=1,1&after=0,0", "topic 1 is listed twice"),
        ("/events?topics=0&after=x", "not a sequence number"),
        ("/events?topics=0,1&after=3", "`after` has 1 positions"),
        ("/events?topics=0&limit=1000", "`limit` must be"),
        ("/long-poll?topics=0&wait=forever", "`wait`"),
    ] {
        let res = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{path}");
        let body: Value = res.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains(needle), "{path}: {body}");
    }
    let res = server.http.get(server.url("/nowhere")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res.json::<Value>().await.unwrap()["error"].is_string());
}

#[tokio::test]
async fn long_poll_returns_as_soon_as_an_event_arrives() {
    let server = TestServer::start().await;
    server
        .reset(&tiny("long_poll", "rate = 5\ntopics = 1", ""), Mode::LongPoll)
        .await;
    let url = server.url("/long-poll?topics=0&after=0&wait=10s");
    let waiting = tokio::spawn(server.http.get(url).send());
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(server.state.stats.snapshot().counters.held_long_polls, 1);
    publish(&server, 0, 1).await;
    let res = tokio::time::timeout(std::time::Duration::from_secs(2), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn registering_a_target_outside_the_allowlist_is_refused() {
    let server = TestServer::start().await;
    server
        .reset(&tiny("webhook", "rate = 5\ntopics = 1", ""), Mode::Webhook)
        .await;
    for url in [
        "http://10.1.2.3:80/hook",
        "http://example.com:80/",
        "http://169.254.169.254:80/",
    ] {
        let res = server
            .http
            .post(server.url("/webhooks"))
            .json(&serde_json::json!({"url": url, "topics": [0]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        let body: Value = res.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().starts_with("url:"), "{body}");
    }
    let ok = server
        .http
        .post(server.url("/webhooks"))
        .json(&serde_json::json!({"url": "http://127.0.0.9:9/h", "topics": [0]}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::CREATED);
    let body: Value = ok.json().await.unwrap();
    assert!(
        body["secret"].as_str().unwrap().starts_with("whsec_"),
        "the server generated a secret: {body}"
    );
}

#[tokio::test]
async fn receiver_rejects_forged_stale_and_unsigned_requests() {
    let (text, secret) = Secret::generate(&mut rand::thread_rng());
    let ledger = Ledger::new(0, vec![0], Arc::new(Recorder::default()));
    let client = ReceiverClient {
        ledger,
        secret: Some(secret.clone()),
        faults: Default::default(),
    };
    let receivers = Receivers::start(None, 1, vec![client], 0).await.unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let body: bytes::Bytes = pushpull::event::Event::new(
        pushpull::event::WireEvent {
            id: 1,
            topic: 0,
            seq: 1,
            scheduled_ns: 0,
            emitted_ns: 0,
            measured: true,
        },
        8,
    )
    .json
    .into();
    let now = clock::unix_seconds();
    let send = |id: Option<&str>, ts: u64, sig: Option<String>, body: bytes::Bytes| {
        let mut req = http
            .post(receivers.url(0))
            .header("webhook-timestamp", ts.to_string())
            .body(body);
        if let Some(id) = id {
            req = req.header("webhook-id", id);
        }
        if let Some(sig) = sig {
            req = req.header("webhook-signature", sig);
        }
        req.send()
    };
    let forged = Secret::parse(&text)
        .unwrap()
        .sign("msg_1", now, b"{\"tampered\":true}");
    assert_eq!(
        send(Some("msg_1"), now, Some(forged), body.clone())
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let stale = secret.sign("msg_1", now - 600, &body);
    let res = send(Some("msg_1"), now - 600, Some(stale), body.clone())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("replay"));
    assert_eq!(
        send(None, now, Some(secret.sign("msg_1", now, &body)), body.clone())
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(Some("msg_1"), now, None, body.clone())
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let good = secret.sign("msg_1", now, &body);
    assert_eq!(
        send(Some("msg_1"), now, Some(good.clone()), body.clone())
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    // The same message again is accepted (at-least-once) but counted as a duplicate.
    assert_eq!(
        send(Some("msg_1"), now, Some(good), body).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let ledgers = receivers.finish().await;
    let c = ledgers[0].counts;
    assert_eq!((c.rejected, c.delivered, c.duplicates, c.requests), (4, 1, 1, 6));
}

#[tokio::test]
async fn oversized_malformed_and_mistyped_bodies_get_json_4xx() {
    let server = TestServer::start().await;
    server
        .reset(&tiny("webhook", "rate = 5\ntopics = 1", ""), Mode::Webhook)
        .await;
    let url = server.url("/webhooks");
    let huge =
        serde_json::json!({"url": "http://127.0.0.9:9/h", "topics": [0], "secret": "x".repeat(100_000)});
    let res = server.http.post(&url).json(&huge).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(res.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("request body"));
    let res = server
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"url\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.json::<Value>().await.unwrap()["error"].is_string());
    let res = server
        .http
        .post(&url)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(res.json::<Value>().await.unwrap()["error"].is_string());
    let res = server
        .http
        .post(&url)
        .json(&serde_json::json!({"url": "http://127.0.0.9:9/h", "topics": [0, 0]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("listed twice"));
}

/// A 503 asking to try again in a second, saying `why` in its JSON body.
async fn assert_busy(res: reqwest::Response, why: &str) {
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "1");
    let body = res.json::<Value>().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains(why), "{body}");
}

#[tokio::test]
async fn long_polls_beyond_the_limit_get_503_with_retry_after() {
    let limits = pushpull::server::Limits {
        max_held_long_polls: 2,
        ..Default::default()
    };
    let server = TestServer::start_with(limits).await;
    server
        .reset(&tiny("long_poll", "rate = 5\ntopics = 1", ""), Mode::LongPoll)
        .await;
    let url = server.url("/long-poll?topics=0&after=0&wait=10s");
    let held: Vec<_> = (0..2)
        .map(|_| tokio::spawn(server.http.get(&url).send()))
        .collect();
    for _ in 0..100 {
        if server.state.stats.snapshot().counters.held_long_polls == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(server.state.stats.snapshot().counters.held_long_polls, 2);
    let res = server.http.get(&url).send().await.unwrap();
    assert_busy(res, "long polls are held").await;
    assert_eq!(
        server.state.stats.snapshot().counters.held_long_polls,
        2,
        "the refused request is not counted as held"
    );
    publish(&server, 0, 1).await;
    for h in held {
        assert_eq!(h.await.unwrap().unwrap().status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn connections_beyond_the_limit_get_503_with_retry_after_and_are_closed() {
    use tokio::io::AsyncReadExt as _;
    let limits = pushpull::server::Limits {
        max_connections: 2,
        ..Default::default()
    };
    let server = TestServer::start_with(limits).await;
    let connect = || tokio::net::TcpStream::connect(server.addr);
    let first = connect().await.unwrap();
    let _second = connect().await.unwrap();
    let refused = || server.state.stats.snapshot().counters.connections_refused;
    // Two held (they need send nothing): the third is answered and closed.
    let res = server
        .http
        .get(server.url("/poll?topics=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["connection"], "close");
    assert_busy(res, "holds 2 client connections at once").await;
    assert_eq!(refused(), 1);
    // A refused connection is closed even if its client says nothing.
    let mut third = connect().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), third.read_to_end(&mut answer))
        .await
        .expect("the refused connection is closed")
        .unwrap();
    assert_eq!(refused(), 2);
    // One held connection closes: the next is served (no run is configured, so 409), not refused.
    drop(first);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let res = server
            .http
            .get(server.url("/poll?topics=0"))
            .send()
            .await
            .unwrap();
        if res.status() != StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the freed connection was not given back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn dead_letters_can_be_listed_and_replayed_once_the_receiver_is_back() {
    let receiver = TestReceiver::start(false).await;
    let server = TestServer::start().await;
    let scenario = tiny("webhook", "rate = 5\ntopics = 2", "[webhook]\nretry = \"github\"");
    server.reset(&scenario, Mode::Webhook).await;
    let res = server
        .http
        .post(server.url("/webhooks"))
        .json(&serde_json::json!({"url": receiver.url, "topics": [0]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    publish(&server, 0, 5).await;
    publish(&server, 1, 3).await;

    let dead_letters = || async {
        let res = server
            .http
            .get(server.url("/webhooks/dead-letters"))
            .send()
            .await
            .unwrap();
        res.json::<Vec<Value>>().await.unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while dead_letters().await.len() < 5 {
        assert!(std::time::Instant::now() < deadline, "{:?}", dead_letters().await);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let letters = dead_letters().await;
    assert_eq!(letters.len(), 5, "only topic 0 was subscribed: {letters:?}");
    assert_eq!(letters[0]["subscription"], "ep_1");
    assert_eq!(letters[0]["attempts"], 1, "`github` does not retry: {letters:?}");

    let replay = |body: Value| {
        server
            .http
            .post(server.url("/webhooks/dead-letters/replay"))
            .json(&body)
            .send()
    };
    let unknown = replay(serde_json::json!({"subscription": "ep_9"})).await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(unknown.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("ep_9"));

    receiver.up.store(true, SeqCst);
    let res = replay(serde_json::json!({})).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["replayed"], 5);
    receiver.wait_for(5).await;
    assert!(dead_letters().await.is_empty());
}

/// A webhook receiver for API tests: answers 204 when up and 503 when down, and keeps the
/// headers of every request it accepts.
struct TestReceiver {
    url: String,
    up: Arc<std::sync::atomic::AtomicBool>,
    accepted: Arc<std::sync::Mutex<Vec<axum::http::HeaderMap>>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestReceiver {
    async fn start(up: bool) -> TestReceiver {
        let up = Arc::new(std::sync::atomic::AtomicBool::new(up));
        let accepted = Arc::new(std::sync::Mutex::new(Vec::new()));
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post({
                let (up, accepted) = (up.clone(), accepted.clone());
                move |headers: axum::http::HeaderMap| async move {
                    if up.load(SeqCst) {
                        accepted.lock().unwrap().push(headers);
                        StatusCode::NO_CONTENT
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move { axum::serve(listener, app).await });
        TestReceiver {
            url,
            up,
            accepted,
            task,
        }
    }

    /// Waits (at most 5 s) until `n` requests were accepted; returns their headers.
    async fn wait_for(&self, n: usize) -> Vec<axum::http::HeaderMap> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let got = self.accepted.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} of {n} accepted",
                got.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

impl Drop for TestReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one_for_the_grace_period() {
    let receiver = TestReceiver::start(true).await;
    let server = TestServer::start().await;
    server
        .reset(&tiny("webhook", "rate = 5\ntopics = 1", ""), Mode::Webhook)
        .await;
    let (old_text, old) = Secret::generate(&mut rand::thread_rng());
    let (new_text, new) = Secret::generate(&mut rand::thread_rng());
    let post = |path: &str, body: Value| server.http.post(server.url(path)).json(&body).send();
    let res = post(
        "/webhooks",
        serde_json::json!({"url": receiver.url, "topics": [0], "secret": old_text}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = post(
        "/webhooks/ep_1/rotate",
        serde_json::json!({"secret": new_text, "grace": "1h"}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["secret"], new_text);
    publish(&server, 0, 1).await;
    let headers = receiver.wait_for(1).await;
    let h = |name: &str| headers[0].get(name).and_then(|v| v.to_str().ok());
    let body = server.state.run().unwrap().log.read_after(0, 0, 1).unwrap().0[0]
        .json
        .clone();
    let signatures = h("webhook-signature").unwrap();
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    let now = clock::unix_seconds();
    for key in [&old, &new] {
        // A receiver that knows either secret accepts the message.
        key.verify(
            h("webhook-id"),
            h("webhook-timestamp"),
            Some(signatures),
            &body,
            now,
        )
        .unwrap();
    }
    // With no grace, the next message is signed by the newest secret alone.
    let res = post("/webhooks/ep_1/rotate", serde_json::json!({"grace": "0s"}))
        .await
        .unwrap();
    let newest = Secret::parse(res.json::<Value>().await.unwrap()["secret"].as_str().unwrap()).unwrap();
    publish(&server, 0, 1).await;
    let headers = receiver.wait_for(2).await;
    let signatures = headers[1]["webhook-signature"].to_str().unwrap();
    assert_eq!(signatures.split(' ').count(), 1, "{signatures}");
    let body = server.state.run().unwrap().log.read_after(0, 1, 1).unwrap().0[0]
        .json
        .clone();
    let (id, ts) = (
        headers[1]["webhook-id"].to_str().ok(),
        headers[1]["webhook-timestamp"].to_str().ok(),
    );
    assert!(newest.verify(id, ts, Some(signatures), &body, now).is_ok());
    assert!(new.verify(id, ts, Some(signatures), &body, now).is_err());
    let missing = post("/webhooks/ep_9/rotate", serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_client_past_its_stream_limit_gets_429_with_retry_after() {
    let limits = pushpull::server::Limits {
        max_streams_per_client: 2,
        ..Default::default()
    };
    let server = TestServer::start_with(limits).await;
    server
        .reset(&tiny("long_poll", "rate = 5\ntopics = 1", ""), Mode::LongPoll)
        .await;
    let url = |client: u32| server.url(&format!("/long-poll?topics=0&after=0&wait=10s&client={client}"));
    let held: Vec<_> = (0..2)
        .map(|_| tokio::spawn(server.http.get(url(7)).send()))
        .collect();
    for _ in 0..100 {
        if server.state.stats.snapshot().counters.held_long_polls == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let res = server.http.get(url(7)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["retry-after"], "1");
    assert!(res.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("client 7 already has 2"));
    // Another client is not held to client 7's count, and the SSE route counts the same slots.
    let other = server
        .http
        .get(server.url("/sse?topics=0&client=7"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::TOO_MANY_REQUESTS);
    let other = server
        .http
        .get(server.url("/sse?topics=0&client=8"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    publish(&server, 0, 1).await;
    for h in held {
        assert_eq!(h.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    // Their answers released the slots.
    let again = server
        .http
        .get(url(7).replace("wait=10s", "wait=1ms"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_quiet_streams_first_heartbeat_comes_after_a_share_of_the_interval_set_by_its_client() {
    // A heartbeat every 2 s: client 1's first is due 2.472 s after its stream opens (an
    // interval and frac(2 × 0.618…) of another) and client 0's 3.236 s after (frac(1 ×
    // 0.618…)), the next ones a whole interval after those; so streams opened together do
    // not all beat at one instant. Neither gets an event.
    let server = TestServer::start().await;
    server
        .reset(
            &tiny("sse", "rate = 5\ntopics = 2", "[sse]\nheartbeat = \"2s\""),
            Mode::Sse,
        )
        .await;
    let opened = std::time::Instant::now();
    let beats = |client: u32| {
        let req = server
            .http
            .get(server.url(&format!("/sse?topics=1&client={client}")));
        async move {
            let mut res = req.send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let mut at = Vec::new();
            while at.len() < 2 {
                let chunk = res.chunk().await.unwrap().expect("the stream stays open");
                let text = String::from_utf8_lossy(&chunk).into_owned();
                at.extend(
                    text.matches(": heartbeat")
                        .map(|_| opened.elapsed().as_secs_f64()),
                );
            }
            at
        }
    };
    let (one, zero) = tokio::join!(beats(1), beats(0));
    // Generous bounds for a shared machine, which still tell both apart from a whole interval
    // after opening (2 s) and from each other.
    assert!((2.4..3.0).contains(&one[0]), "client 1: {one:?}");
    assert!((3.15..3.8).contains(&zero[0]), "client 0: {zero:?}");
    for b in [&one, &zero] {
        assert!(
            (b[1] - b[0] - 2.0).abs() < 0.3,
            "a whole interval between beats: {b:?}"
        );
    }
}

#[tokio::test]
async fn subscriptions_past_the_limit_are_refused_with_a_reason() {
    let limits = pushpull::server::Limits {
        max_subscriptions: 2,
        ..Default::default()
    };
    let server = TestServer::start_with(limits).await;
    server.reset(&tiny("webhook", "", ""), Mode::Webhook).await;
    let register = || {
        server
            .http
            .post(server.url("/webhooks"))
            .json(&serde_json::json!({"url": "http://127.0.0.2:9/hook", "topics": [0]}))
            .send()
    };
    for _ in 0..2 {
        assert_eq!(register().await.unwrap().status(), StatusCode::CREATED);
    }
    let refused = register().await.unwrap();
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert!(refused.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("at most 2 subscriptions"));
}

#[tokio::test]
async fn huge_headers_and_invalid_utf8_are_refused_and_the_server_carries_on() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start().await;
    let exchange = |request: Vec<u8>| async move {
        let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        socket.write_all(&request).await.unwrap();
        let mut answer = Vec::new();
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(5), socket.read_to_end(&mut answer)).await;
        String::from_utf8_lossy(&answer).to_string()
    };
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {}\r\nconnection: close\r\n\r\n",
        "a".repeat(512 * 1024)
    );
    let answer = exchange(huge.into_bytes()).await;
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "{}",
        &answer[..answer.len().min(80)]
    );
    let mut bad_utf8 =
        b"GET /events?topics=\xff\xfe&after=\xc3 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec();
    let answer = exchange(std::mem::take(&mut bad_utf8)).await;
    assert!(
        answer.starts_with("HTTP/1.1 4"),
        "{}",
        &answer[..answer.len().min(80)]
    );
    let ok = exchange(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec()).await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}
