//! Server-Sent Events (WHATWG HTML §9.2): `GET /sse?topics=..` answers a `text/event-stream`.
//!
//! Every event frame carries `id:` (the client's cursor after it), so a reconnecting client
//! sends `Last-Event-ID` and resumes exactly; the stream opens with a `retry:` hint and sends a
//! `:` comment as heartbeat. A cursor past retention gets an `event: gap` frame.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Empty};
use serde::{Deserialize, Serialize};

mod parser;

pub use parser::{SseFrame, SseParser};

use super::http::HttpConn;
use super::http::{retry_after, Reconnect};
use super::stream::{Batch, Session};
use super::{client_id, topics_and_cursor, ClientCtx};
use crate::event::{decode, format_topics};
use crate::recorder::Ledger;
use crate::server::extract::ApiQuery;
use crate::server::http1::ConnectionCloser;
use crate::server::{ApiError, AppState};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/sse", get(sse))
}

/// The data of an `event: gap` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// Index into the client's topics.
    pub index: usize,
    /// The last seq the client had.
    pub from: u64,
    /// The first seq the server still holds.
    pub earliest: u64,
}

async fn sse(
    State(state): State<AppState>,
    ApiQuery(mut query): ApiQuery<HashMap<String, String>>,
    closer: Option<Extension<ConnectionCloser>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let run = state.run()?;
    let client = client_id(&query)?;
    run.refuse_if_cut(client)?;
    let slot = run.open_for(client)?;
    if let Some(last) = headers.get("last-event-id") {
        let last = last
            .to_str()
            .map_err(|_| ApiError::BadRequest("`Last-Event-ID` is not text".into()))?;
        query.insert("after".into(), last.to_string());
    }
    let (topics, cursor) = topics_and_cursor(&query, run.log.topic_count())?;
    let params = run.scenario.sse.clone();
    // Closing means dropping the connection itself: a blocked write cannot hold it open.
    let closer = closer.map(|Extension(c)| c.0).unwrap_or_default();
    let session = Session::open(run, topics, cursor, &params, true, client, closer);
    let opening = Bytes::from(format!("retry: {}\n\n", params.retry.as_millis()));
    let stream = futures_util::stream::unfold(
        (session, Some(opening), slot),
        |(mut session, opening, slot)| async move {
            if let Some(chunk) = opening {
                return Some((Ok::<_, std::io::Error>(chunk), (session, None, slot)));
            }
            let chunk = match session.next().await {
                Batch::Events(events) => {
                    let mut out = BytesMut::new();
                    for (ev, id) in events {
                        out.put_slice(b"id: ");
                        out.put_slice(id.as_deref().unwrap_or_default().as_bytes());
                        out.put_slice(b"\ndata: ");
                        out.put_slice(&ev.json);
                        out.put_slice(b"\n\n");
                    }
                    out.freeze()
                }
                Batch::Gap {
                    index,
                    from,
                    earliest,
                } => {
                    let gap = serde_json::to_string(&Gap {
                        index,
                        from,
                        earliest,
                    })
                    .expect("gap serializes");
                    Bytes::from(format!("id: {}\nevent: gap\ndata: {gap}\n\n", session.cursor()))
                }
                Batch::Heartbeat => Bytes::from_static(b": heartbeat\n\n"),
                Batch::Overflowed | Batch::Cut => {
                    session.closed().cancel();
                    return None;
                }
                Batch::Ended => return None,
            };
            Some((Ok(chunk), (session, None, slot)))
        },
    );
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    Ok((headers, Body::from_stream(stream)).into_response())
}

/// An SSE client: open the stream, apply every event, reconnect with `Last-Event-ID` after the
/// server's `retry:` delay when the stream ends (backing off while attempts keep failing).
pub async fn client(mut ctx: ClientCtx) -> Ledger {
    let params = ctx.scenario.sse.clone();
    let topics = format_topics(&ctx.ledger.topics);
    // The last event id seen (empty: none), sent as `Last-Event-ID` on reconnecting.
    let mut last_id = String::new();
    let mut reconnect = Reconnect::new(params.retry);
    let mut conn = HttpConn::new(ctx.server);
    if ctx.pauses() {
        conn = conn.with_recv_buffer(4096);
    }
    'connect: loop {
        if ctx.before_request().await {
            break;
        }
        let mut req = conn
            .get(&format!("/sse?topics={topics}&client={}", ctx.id))
            .header(header::ACCEPT, "text/event-stream");
        if !last_id.is_empty() {
            req = req.header("last-event-id", last_id.as_str());
        }
        ctx.ledger.counts.requests += 1;
        let res = tokio::select! {
            res = conn.send(req.body(Empty::new()).expect("valid request")) => res,
            _ = ctx.stop.cancelled() => break,
        };
        match res {
            Ok(res) if res.status() == 204 => break, // the server says: stop reconnecting
            Ok(res) if res.status().is_success() => {
                reconnect.connected();
                let mut body = res.into_body();
                let mut parser = SseParser::default();
                loop {
                    let frame = tokio::select! {
                        f = body.frame() => f,
                        _ = ctx.stop.cancelled() => break 'connect,
                    };
                    let Some(Ok(frame)) = frame else { break };
                    let Some(data) = frame.data_ref() else {
                        continue;
                    };
                    // A paused client reads nothing; what arrived is read when the pause ends.
                    if ctx.hold_while_paused().await {
                        break 'connect;
                    }
                    let now = ctx.arrival_ns();
                    let ledger = &mut ctx.ledger;
                    parser.feed(data, |frame| {
                        apply(ledger, &frame, now);
                        if let Some(id) = frame.id {
                            last_id.clear();
                            last_id.push_str(&String::from_utf8_lossy(id));
                        }
                    });
                    if let Some(ms) = parser.retry_ms {
                        reconnect.retry = Duration::from_millis(ms);
                    }
                }
            }
            Ok(res) => {
                ctx.ledger.counts.errors += 1;
                reconnect.failed(res.headers().get(header::RETRY_AFTER).and_then(retry_after));
            }
            Err(_) => {
                ctx.ledger.counts.errors += 1;
                reconnect.failed(None);
            }
        }
        // The stream ended: the server closed it (slow consumer, cut, restart) or it failed.
        conn.close();
        if reconnect.wait(&ctx.stop).await {
            break;
        }
        ctx.ledger.counts.reconnects += 1;
    }
    ctx.ledger
}

/// Applies one SSE event that arrived at `now_ns`.
fn apply(ledger: &mut Ledger, frame: &SseFrame<'_>, now_ns: u64) {
    match frame.event {
        b"message" => match decode(frame.data) {
            Ok(wire) => {
                ledger.observe_at(&wire, now_ns);
            }
            Err(_) => ledger.counts.errors += 1,
        },
        b"gap" => match serde_json::from_slice::<Gap>(frame.data) {
            Ok(g) if g.index < ledger.topics.len() => ledger.gap(g.index, g.from, g.earliest),
            _ => ledger.counts.errors += 1,
        },
        _ => {}
    }
}
