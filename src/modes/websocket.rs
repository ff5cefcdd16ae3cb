//! WebSocket streaming: `GET /ws`, then a subscribe message `{"topics":[0,3],"after":"5,7"}`.
//!
//! WebSocket has no standard resume, so the subscribe message carries the last seq seen per
//! topic. The server pushes one text frame per event, writing whatever is queued before one
//! flush. A client that falls behind its bounded send queue is disconnected with close code
//! 4008 ("slow consumer", counted) and resumes from its cursor when it reconnects.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as ClientMessage;

use super::http::connect;
use super::http::{retry_after, Reconnect};
use super::sse::Gap;
use super::stream::{Batch, Session};
use super::{client_id, ClientCtx};
use crate::event::{check_topics, decode, Cursor, TopicId};
use crate::recorder::Ledger;
use crate::server::extract::ApiQuery;
use crate::server::{ApiError, AppState, RunState};

/// Bytes of frames the server gathers before writing them out (a flush writes sooner).
pub const SERVER_WRITE_BUFFER: usize = 64 * 1024;

/// Close code for a client that fell behind its send queue.
pub const CLOSE_SLOW_CONSUMER: u16 = 4008;

/// Close code for a `stream_cut` fault ("service restart", RFC 6455 §7.4 registry).
pub const CLOSE_CUT: u16 = 1012;

/// The client reads 4 KiB at a time and writes straight through (it sends one message per
/// connection): 20× less memory per idle connection than tungstenite's defaults (DESIGN.md).
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/ws", get(ws))
}

/// The first message a client sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Subscribe {
    /// Topics to follow.
    pub topics: Vec<TopicId>,
    /// The cursor to resume after (`"5,7"`), or absent to start at the beginning.
    #[serde(default)]
    pub after: Option<String>,
}

/// A control message from the server (anything that is not an event).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Control {
    /// Events the client asked for that are no longer retained.
    pub gap: Gap,
}

async fn ws(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<std::collections::HashMap<String, String>>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let upgrade =
        upgrade.map_err(|e| ApiError::Status(e.status(), format!("WebSocket: {}", e.body_text())))?;
    let run = state.run()?;
    let client = client_id(&query)?;
    run.refuse_if_cut(client)?;
    let slot = run.open_for(client)?;
    // The server reads little (4 KiB buffer) but writes batches: frames collect in the write
    // buffer until a flush or 64 KiB, one syscall per batch instead of one per frame. The
    // buffer starts empty and grows only as far as a batch needs, so idle connections stay small.
    Ok(upgrade
        .read_buffer_size(4096)
        .write_buffer_size(SERVER_WRITE_BUFFER)
        .on_upgrade(move |socket| async move {
            serve_socket(run, socket, client).await;
            drop(slot);
        }))
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

async fn serve_socket(run: Arc<RunState>, socket: WebSocket, client: Option<u32>) {
    let (mut tx, mut rx) = socket.split();
    let subscribe = match tokio::time::timeout(Duration::from_secs(10), rx.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => parse_subscribe(&text, run.log.topic_count()),
        _ => Err("expected a subscribe message".to_string()),
    };
    let (topics, cursor) = match subscribe {
        Ok(s) => s,
        Err(_) => {
            let _ = tx.send(close(1008, "bad subscribe message")).await;
            return;
        }
    };
    let params = run.scenario.websocket.clone();
    // WebSocket clients resume from their own cursor: no id per event.
    let mut session = Session::open(run, topics, cursor, &params, false, client, Default::default());
    loop {
        tokio::select! {
            batch = session.next() => {
                let closed = session.closed().clone();
                let write = async {
                    match batch {
                        Batch::Events(events) => {
                            for (ev, _) in events {
                                let text = Utf8Bytes::try_from(ev.json_bytes()).expect("event JSON is UTF-8");
                                tx.feed(Message::Text(text)).await?;
                            }
                            tx.flush().await?;
                        }
                        Batch::Gap { index, from, earliest } => {
                            let msg = serde_json::to_string(&Control { gap: Gap { index, from, earliest } })
                                .expect("serializes");
                            tx.send(Message::Text(msg.into())).await?;
                        }
                        Batch::Heartbeat => tx.send(Message::Ping(Default::default())).await?,
                        Batch::Overflowed => {
                            let _ = tx.send(close(CLOSE_SLOW_CONSUMER, "slow consumer")).await;
                            return Err(axum::Error::new("closed"));
                        }
                        Batch::Cut => {
                            let _ = tx.send(close(CLOSE_CUT, "stream cut")).await;
                            return Err(axum::Error::new("closed"));
                        }
                        Batch::Ended => {
                            let _ = tx.send(close(1001, "run ended")).await;
                            return Err(axum::Error::new("closed"));
                        }
                    }
                    Ok(())
                };
                // A client that overflows its queue while a write to it is blocked is dropped
                // at once, not when the write finally completes.
                let sent = tokio::select! {
                    sent = write => sent,
                    _ = closed.cancelled() => break,
                };
                if sent.is_err() { break; }
            }
            msg = rx.next() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    }
}

fn parse_subscribe(text: &str, topic_count: u32) -> Result<(Vec<TopicId>, Cursor), String> {
    let sub: Subscribe = serde_json::from_str(text).map_err(|e| e.to_string())?;
    check_topics(&sub.topics, topic_count)?;
    let topics = sub.topics;
    let cursor = match sub.after {
        Some(a) => a.parse::<Cursor>()?,
        None => Cursor::start(topics.len()),
    };
    if cursor.0.len() != topics.len() {
        return Err("`after` must have one position per topic".into());
    }
    Ok((topics, cursor))
}

/// A WebSocket client: connect, subscribe from its cursor, apply every frame; on close,
/// reconnect after the retry delay (backing off while attempts keep failing) and resume.
pub async fn client(mut ctx: ClientCtx) -> Ledger {
    let params = ctx.scenario.websocket.clone();
    let recv_buffer = ctx.pauses().then_some(4096);
    let url = format!("ws://{}/ws?client={}", ctx.server, ctx.id);
    let mut reconnect = Reconnect::new(params.retry);
    let mut first = true;
    'connect: loop {
        if !first {
            if reconnect.wait(&ctx.stop).await {
                break;
            }
            ctx.ledger.counts.reconnects += 1;
        }
        first = false;
        if ctx.before_request().await {
            break;
        }
        ctx.ledger.counts.requests += 1;
        let connected = async {
            let stream = connect(ctx.server, recv_buffer).await?;
            let (ws, _) =
                tokio_tungstenite::client_async_with_config(url.as_str(), stream, Some(config())).await?;
            anyhow::Ok(ws)
        };
        let mut ws = tokio::select! {
            ws = connected => match ws {
                Ok(ws) => ws,
                Err(e) => {
                    ctx.ledger.counts.errors += 1;
                    let asked = match e.downcast_ref() {
                        Some(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                            res.headers().get(axum::http::header::RETRY_AFTER).and_then(retry_after)
                        }
                        _ => None,
                    };
                    reconnect.failed(asked);
                    continue;
                }
            },
            _ = ctx.stop.cancelled() => break,
        };
        reconnect.connected();
        let sub = Subscribe {
            topics: ctx.ledger.topics.clone(),
            after: Some(ctx.ledger.cursor().to_string()),
        };
        if ws
            .send(ClientMessage::text(
                serde_json::to_string(&sub).expect("serializes"),
            ))
            .await
            .is_err()
        {
            ctx.ledger.counts.errors += 1;
            continue;
        }
        loop {
            let msg = tokio::select! {
                msg = ws.next() => msg,
                _ = ctx.stop.cancelled() => {
                    let _ = ws.close(None).await;
                    break 'connect;
                }
            };
            // A paused client reads nothing; what arrived is read when the pause ends.
            if ctx.hold_while_paused().await {
                break 'connect;
            }
            let now = ctx.arrival_ns();
            match msg {
                Some(Ok(ClientMessage::Text(text))) => apply(&mut ctx.ledger, text.as_bytes(), now),
                Some(Ok(ClientMessage::Binary(data))) => apply(&mut ctx.ledger, &data, now),
                Some(Ok(ClientMessage::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            }
        }
    }
    ctx.ledger
}

/// Applies one frame that arrived at `now_ns`.
fn apply(ledger: &mut Ledger, data: &[u8], now_ns: u64) {
    if data.starts_with(b"{\"gap\"") {
        match serde_json::from_slice::<Control>(data) {
            Ok(Control { gap }) if gap.index < ledger.topics.len() => {
                ledger.gap(gap.index, gap.from, gap.earliest)
            }
            _ => ledger.counts.errors += 1,
        }
        return;
    }
    match decode(data) {
        Ok(ev) => {
            ledger.observe_at(&ev, now_ns);
        }
        Err(_) => ledger.counts.errors += 1,
    }
}
