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
use super::poll::sleep_or_stop;
use super::sse::Gap;
use super::stream::{is_slow, Batch, Session};
use super::ClientCtx;
use crate::driver::recorder::Ledger;
use crate::event::{check_topics, decode, Cursor, TopicId};
use crate::server::{ApiError, AppState, RunState};

/// Bytes of frames the server gathers before writing them out (a flush writes sooner).
const SERVER_WRITE_BUFFER: usize = 64 * 1024;

/// Close code for a client that fell behind its send queue.
pub const CLOSE_SLOW_CONSUMER: u16 = 4008;

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

async fn ws(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Result<Response, ApiError> {
    let run = state.run()?;
    // The server reads little (4 KiB buffer) but writes batches: frames collect in the write
    // buffer until a flush or 64 KiB, one syscall per batch instead of one per frame. The
    // buffer starts empty and grows only as far as a batch needs, so idle connections stay small.
    Ok(upgrade
        .read_buffer_size(4096)
        .write_buffer_size(SERVER_WRITE_BUFFER)
        .on_upgrade(move |socket| serve_socket(run, socket)))
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

async fn serve_socket(run: Arc<RunState>, socket: WebSocket) {
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
    let mut session = Session::open(run, topics, cursor, &params, false);
    loop {
        tokio::select! {
            batch = session.next() => {
                let sent = match batch {
                    Batch::Events(events) => {
                        let mut res = Ok(());
                        for (ev, _) in events {
                            let text = Utf8Bytes::try_from(ev.json.clone()).expect("event JSON is UTF-8");
                            res = tx.feed(Message::Text(text)).await;
                            if res.is_err() { break; }
                        }
                        match res { Ok(()) => tx.flush().await, e => e }
                    }
                    Batch::Gap { index, from, earliest } => {
                        let msg = serde_json::to_string(&Control { gap: Gap { index, from, earliest } }).expect("serializes");
                        tx.send(Message::Text(msg.into())).await
                    }
                    Batch::Heartbeat => tx.send(Message::Ping(Default::default())).await,
                    Batch::Overflowed => {
                        let _ = tx.send(close(CLOSE_SLOW_CONSUMER, "slow consumer")).await;
                        break;
                    }
                    Batch::Ended => {
                        let _ = tx.send(close(1001, "run ended")).await;
                        break;
                    }
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
/// reconnect after the retry delay and resume.
pub async fn client(mut ctx: ClientCtx) -> Ledger {
    let params = ctx.scenario.websocket.clone();
    let slow = is_slow(&params, ctx.scenario.clients.count, ctx.id);
    let mut paused = !slow;
    let url = format!("ws://{}/ws", ctx.server);
    let mut first = true;
    'connect: loop {
        if !first {
            if sleep_or_stop(params.retry, &ctx.stop).await {
                break;
            }
            ctx.ledger.counts.reconnects += 1;
        }
        first = false;
        ctx.ledger.counts.requests += 1;
        let connected = async {
            let stream = connect(ctx.server, slow.then_some(4096)).await?;
            let (ws, _) =
                tokio_tungstenite::client_async_with_config(url.as_str(), stream, Some(config())).await?;
            anyhow::Ok(ws)
        };
        let mut ws = tokio::select! {
            ws = connected => match ws {
                Ok(ws) => ws,
                Err(_) => { ctx.ledger.counts.errors += 1; continue; }
            },
            _ = ctx.stop.cancelled() => break,
        };
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
            match msg {
                Some(Ok(ClientMessage::Text(text))) => apply(&mut ctx.ledger, text.as_bytes()),
                Some(Ok(ClientMessage::Binary(data))) => apply(&mut ctx.ledger, &data),
                Some(Ok(ClientMessage::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            }
            if !paused && ctx.ledger.counts.delivered > 0 {
                paused = true;
                if sleep_or_stop(params.slow_pause, &ctx.stop).await {
                    break 'connect;
                }
            }
        }
    }
    ctx.ledger
}

fn apply(ledger: &mut Ledger, data: &[u8]) {
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
            ledger.observe(&ev);
        }
        Err(_) => ledger.counts.errors += 1,
    }
}
