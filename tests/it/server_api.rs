//! The server's HTTP API, spoken to directly: cursors, ETags, 410s, bad requests, webhook
//! registration, and the receiver's verification.

use std::sync::Arc;

use pushpull::clock;
use pushpull::driver::recorder::{Ledger, Recorder};
use pushpull::modes::webhook::receiver::{ReceiverClient, Receivers};
use pushpull::modes::webhook::signature::Secret;
use pushpull::modes::Mode;
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
    assert_eq!(server.state.stats.snapshot().held_long_polls, 1);
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
    let body = pushpull::event::Event::new(
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
    .json;
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
        if server.state.stats.snapshot().held_long_polls == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(server.state.stats.snapshot().held_long_polls, 2);
    let res = server.http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "1");
    assert!(res.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("long polls are held"));
    assert_eq!(
        server.state.stats.snapshot().held_long_polls,
        2,
        "the refused request is not counted as held"
    );
    publish(&server, 0, 1).await;
    for h in held {
        assert_eq!(h.await.unwrap().unwrap().status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn dead_letters_can_be_listed_and_replayed_once_the_receiver_is_back() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
    // A receiver that is down (503) until told otherwise, counting what it accepts.
    let up = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let (up, accepted) = (up.clone(), accepted.clone());
            move || async move {
                if up.load(SeqCst) {
                    accepted.fetch_add(1, SeqCst);
                    StatusCode::NO_CONTENT
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let receiver = tokio::spawn(async move { axum::serve(listener, app).await });

    let server = TestServer::start().await;
    let scenario = tiny("webhook", "rate = 5\ntopics = 2", "[webhook]\nretry = \"github\"");
    server.reset(&scenario, Mode::Webhook).await;
    let res = server
        .http
        .post(server.url("/webhooks"))
        .json(&serde_json::json!({"url": hook, "topics": [0]}))
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

    up.store(true, SeqCst);
    let res = replay(serde_json::json!({})).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["replayed"], 5);
    while accepted.load(SeqCst) < 5 {
        assert!(std::time::Instant::now() < deadline + std::time::Duration::from_secs(5));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(dead_letters().await.is_empty());
    receiver.abort();
}
