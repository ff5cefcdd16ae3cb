//! Random and mutated inputs: the scenario parser and the HTTP API answer every one with a
//! clear error (a place in the file; a 4xx with a JSON reason) and never panic.

use std::path::Path;

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use proptest::prelude::*;
use pushpull::api::ResetRequest;
use pushpull::modes::Mode;
use pushpull::scenario::Scenario;
use pushpull::server::{self, AppState};
use tower::ServiceExt;

use crate::util::tiny;

/// A valid scenario that uses most of the format, faults and sweep included.
const VALID: &str = r#"name = "fuzzed"
seed = 3
duration = "2s"
late_after = "1s"
modes = ["poll", "sse", "webhook"]

[events]
rate = 20
arrival = "bursty"
burst_size = 5
topics = 4

[clients]
count = 8
topics_per_client = 2

[poll]
interval = "500ms"

[webhook]
retry = ["10ms", "1s"]
time_scale = 0.5

[[faults]]
kind = "receiver_down"
at = "1s"
for = "500ms"
share = 0.5
retry_after = "1s"

[thresholds]
"sse.latency.p99" = "< 1s"

[sweep]
"poll.interval" = ["1s", "2s"]
"#;

/// Mutations of [`VALID`]: a byte range replaced by arbitrary text.
fn mutated() -> impl Strategy<Value = String> {
    (
        0..VALID.len(),
        0usize..12,
        "\\PC{0,12}|[\\[\\]=\"#\n.,{}0-9a-z_ -]{0,12}",
    )
        .prop_map(|(at, len, with)| {
            let at = (0..=at).rev().find(|i| VALID.is_char_boundary(*i)).unwrap_or(0);
            let end = (at + len..=VALID.len())
                .find(|i| VALID.is_char_boundary(*i))
                .unwrap_or(VALID.len());
            format!("{}{}{}", &VALID[..at], with, &VALID[end..])
        })
}

fn check_parse(text: &str) -> Result<(), TestCaseError> {
    match Scenario::parse(Path::new("fuzz.toml"), text) {
        Ok(s) => {
            // What validates also survives its own resolved form (sweeps rely on it).
            let again = Scenario::parse(Path::new("resolved.toml"), &s.to_toml());
            prop_assert!(again.is_ok(), "resolved form refused: {:?}", again.err());
        }
        Err(e) => {
            let lines = text.lines().count().max(1);
            prop_assert!(
                e.line >= 1 && e.line <= lines + 1,
                "line {} of {lines}: {e}",
                e.line
            );
            prop_assert!(e.column >= 1, "{e}");
            prop_assert!(!e.message.is_empty(), "an error without a message");
            let shown = e.to_string();
            prop_assert!(shown.contains("fuzz.toml:"), "{shown}");
        }
    }
    Ok(())
}

#[test]
fn regression_a_value_missing_at_the_end_of_the_file_is_named() {
    // Found by the scenario_parser fuzz target: the TOML parser gives no message for it.
    let e = Scenario::parse(Path::new("fuzz.toml"), "I=").unwrap_err();
    assert_eq!((e.line, e.column), (1, 3));
    assert!(e.message.contains("ends where a value was expected"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn a_mutated_scenario_is_accepted_or_refused_with_its_place(text in mutated()) {
        check_parse(&text)?;
    }

    #[test]
    fn arbitrary_text_is_refused_with_its_place(text in "\\PC{0,200}") {
        check_parse(&text)?;
    }
}

/// Requests as a client might send them, sane or not.
fn request() -> impl Strategy<Value = (Method, String, Vec<u8>, Option<&'static str>)> {
    let path = prop_oneof![
        Just("/events"),
        Just("/long-poll"),
        Just("/sse"),
        Just("/ws"),
        Just("/webhooks"),
        Just("/webhooks/dead-letters/replay"),
        Just("/control/start"),
        Just("/nowhere"),
    ];
    let query = prop_oneof![
        Just(String::new()),
        "[a-z_=&%0-9,.-]{0,40}".prop_map(|q| format!("?{q}")),
        (any::<i64>(), any::<u64>(), "[0-9a-z.]{0,8}")
            .prop_map(|(a, b, w)| { format!("?topics={a}&after={b}&limit={a}&wait={w}&client={b}") }),
        Just("?topics=0,0,1&after=1,2".to_string()),
        Just("?topics=0&after=99999999999999999999999".to_string()),
        Just("?topics=%FF%FE&wait=-1s".to_string()),
    ];
    let body = prop_oneof![
        Just(Vec::new()),
        any::<Vec<u8>>(),
        Just(b"{\"url\":\"http://10.0.0.1/x\",\"topics\":[0]}".to_vec()),
        Just(b"{\"url\":\"http://127.0.0.1:1/x\",\"topics\":[0,0]}".to_vec()),
        Just(b"{\"start_ns\": 1}".to_vec()),
        Just(b"{\"subscription\": 7}".to_vec()),
        Just(vec![0xff, 0xfe, b'{']),
    ];
    let content_type = prop_oneof![
        Just(None),
        Just(Some("application/json")),
        Just(Some("text/plain"))
    ];
    let method = prop_oneof![Just(Method::GET), Just(Method::POST), Just(Method::DELETE)];
    (
        method,
        (path, query).prop_map(|(p, q)| format!("{p}{q}")),
        body,
        content_type,
    )
}

#[test]
fn no_request_makes_the_server_panic_or_answer_without_a_json_reason() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let state = AppState::new(Default::default());
    let app = server::control_app(state.clone(), None);
    rt.block_on(async {
        let reset = ResetRequest {
            scenario: tiny("webhook", "", "").to_toml(),
            mode: Mode::Webhook,
        };
        let req = Request::post("/control/reset")
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&reset).unwrap()))
            .unwrap();
        assert!(app.clone().oneshot(req).await.unwrap().status().is_success());
    });
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 600,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&request(), |(method, uri, body, content_type)| {
            let Ok(mut req) = Request::builder().method(method).uri(&uri).body(Body::from(body)) else {
                return Ok(()); // not even a valid URI: no server would see it
            };
            if let Some(ct) = content_type {
                req.headers_mut().insert("content-type", ct.parse().unwrap());
            }
            let (status, bytes) = rt.block_on(async {
                let res = app.clone().oneshot(req).await.unwrap();
                let status = res.status();
                // Streams answer 200 and would run forever; their heads are all we judge.
                if status.is_success() {
                    return (status, Vec::new());
                }
                let bytes = res.into_body().collect().await.unwrap().to_bytes().to_vec();
                (status, bytes)
            });
            prop_assert!(!status.is_server_error() || status == 503, "{uri}: {status}");
            if status.is_client_error() || status == 503 {
                let body: serde_json::Value = serde_json::from_slice(&bytes)
                    .map_err(|e| TestCaseError::fail(format!("{uri}: {status} body is not JSON ({e})")))?;
                prop_assert!(
                    body["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "{uri}: {body}"
                );
            }
            Ok(())
        })
        .unwrap();
}
