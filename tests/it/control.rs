//! The control API is the driver's alone: nothing on the public listener can reset, start,
//! stop or shut down a run; a scenario posted to reset is validated like a file; a control
//! listener with a token refuses requests without it.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use pushpull::api::ResetRequest;
use pushpull::modes::Mode;
use pushpull::server::{self, AppState};
use serde_json::Value;
use tower::ServiceExt as _;

use crate::util::{tiny, TestServer};

#[tokio::test]
async fn a_client_on_the_public_port_cannot_steer_the_run() {
    let server = TestServer::start().await;
    server
        .reset(&tiny("poll", "rate = 5\ntopics = 1", ""), Mode::Poll)
        .await;
    let reset = ResetRequest {
        scenario: tiny("poll", "rate = 5\ntopics = 1", "").to_toml(),
        mode: Mode::Poll,
    };
    for (path, body) in [
        ("/control/reset", serde_json::to_value(&reset).unwrap()),
        ("/control/start", Value::Null),
        ("/control/stop", Value::Null),
        ("/control/shutdown", Value::Null),
    ] {
        let res = server
            .http
            .post(server.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        let why: Value = res.json().await.unwrap();
        assert!(why["error"].is_string(), "{path}: {why}");
    }
    // The run is untouched: not started, still serving polls, and the server still up.
    let run = server.state.run().expect("the run the control listener set up");
    assert!(!run.started.is_cancelled());
    let poll = server
        .http
        .get(server.url("/events?topics=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(poll.status(), StatusCode::OK);
    let health = server.http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    // The same calls on the control listener work.
    let start = server
        .http
        .post(server.control_url("/control/start"))
        .json(&Value::Null)
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_bad_scenario_posted_to_reset_gets_422_naming_the_field() {
    let server = TestServer::start().await;
    let text = tiny("poll", "rate = 5\ntopics = 1", "")
        .to_toml()
        .replace("rate = 5.0", "rate = -3.0");
    assert!(text.contains("rate = -3.0"), "{text}");
    let res = server
        .http
        .post(server.control_url("/control/reset"))
        .json(&ResetRequest {
            scenario: text.clone(),
            mode: Mode::Poll,
        })
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let why: Value = res.json().await.unwrap();
    assert_eq!(why["field"], "events.rate", "{why}");
    let line = text.lines().position(|l| l == "rate = -3.0").unwrap() + 1;
    assert_eq!(why["line"], line, "{why}");
    assert!(why["error"].as_str().unwrap().contains("rate"), "{why}");
    assert!(server.state.run().is_err(), "nothing was set up");
}

#[tokio::test]
async fn a_control_listener_with_a_token_refuses_requests_without_it() {
    let app = server::control_app(AppState::new(Default::default()), Some("s3cret".into()));
    let call = |auth: Option<&str>| {
        let mut req = Request::get("/stats");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        app.clone().oneshot(req.body(Body::empty()).unwrap())
    };
    for auth in [None, Some("Bearer wrong"), Some("Bearer s3cre"), Some("s3cret")] {
        let res = call(auth).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let why: Value = serde_json::from_slice(&body).unwrap();
        assert!(why["error"].as_str().unwrap().contains("token"), "{why}");
    }
    assert_eq!(
        call(Some("Bearer s3cret")).await.unwrap().status(),
        StatusCode::OK
    );
}
