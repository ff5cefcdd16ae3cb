//! The vocabulary every other module speaks: events, topics, sequence numbers, cursors, and
//! the delivery modes by name.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

mod decode;
pub use decode::decode;

/// A topic's index, `0..topics`.
pub type TopicId = u32;
/// A sequence number within one topic; the first event of a topic has seq 1.
pub type Seq = u64;

/// One event as the server holds it, with its wire form encoded once and shared by every delivery.
#[derive(Debug, Clone)]
pub struct Event {
    /// Unique across all topics of one run, in emission order, starting at 1.
    pub id: u64,
    /// The topic it was published on.
    pub topic: TopicId,
    /// Its position in the topic.
    pub seq: Seq,
    /// When the schedule said it should exist (CLOCK_MONOTONIC ns); latency is measured from here.
    pub scheduled_ns: u64,
    /// When the generator actually emitted it (CLOCK_MONOTONIC ns).
    pub emitted_ns: u64,
    /// False for events of the warm-up period, which are delivered but not counted.
    pub measured: bool,
    /// The JSON object sent to clients, encoded once, in one allocation of its exact length
    /// (see [`Event::json_bytes`] for a body that must own it).
    pub json: Box<[u8]>,
}

/// The fields of an event's JSON that clients read (the payload is skipped, not copied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireEvent {
    /// See [`Event::id`].
    pub id: u64,
    /// See [`Event::topic`].
    pub topic: TopicId,
    /// See [`Event::seq`].
    pub seq: Seq,
    /// See [`Event::scheduled_ns`].
    pub scheduled_ns: u64,
    /// See [`Event::emitted_ns`].
    pub emitted_ns: u64,
    /// See [`Event::measured`].
    pub measured: bool,
}

impl Event {
    /// Builds an event and encodes its JSON with a payload of `payload_bytes` filler characters.
    pub fn new(wire: WireEvent, payload_bytes: usize) -> Event {
        let head = serde_json::to_vec(&wire).expect("plain struct serializes");
        // The text is allocated at its exact length, so that what the log holds per event is
        // known (`EventLog::retained_bytes`).
        const KEY: &[u8] = b",\"payload\":\"";
        let mut json = Vec::with_capacity(head.len() - 1 + KEY.len() + payload_bytes + 2);
        json.extend_from_slice(&head[..head.len() - 1]); // the payload goes before the closing brace
        json.extend_from_slice(KEY);
        json.extend((0..payload_bytes).map(|i| b'a' + (i % 26) as u8));
        json.extend_from_slice(b"\"}");
        debug_assert_eq!(json.len(), json.capacity());
        Event {
            id: wire.id,
            topic: wire.topic,
            seq: wire.seq,
            scheduled_ns: wire.scheduled_ns,
            emitted_ns: wire.emitted_ns,
            measured: wire.measured,
            json: json.into_boxed_slice(),
        }
    }

    /// The JSON as [`Bytes`], for a body that must own its bytes (a webhook attempt, a
    /// WebSocket frame): it holds the event, and its own count lives in a small allocation that
    /// goes when the body does. A `Bytes` of the text itself would, on its first clone, give
    /// every event a second allocation for its count, kept for as long as the log keeps the
    /// event and counted nowhere.
    pub fn json_bytes(self: &Arc<Self>) -> Bytes {
        Bytes::from_owner(JsonOf(self.clone()))
    }

    /// The webhook message id: stable across retries, the receiver's idempotency key.
    pub fn message_id(&self) -> String {
        self.message_id_on_stack().as_str().to_string()
    }

    /// [`Event::message_id`] without an allocation: deliveries waiting for a worker keep
    /// only the event, and each attempt writes its id here.
    pub fn message_id_on_stack(&self) -> MessageId {
        let mut id = MessageId { buf: [0; 24], len: 0 };
        id.buf[..4].copy_from_slice(b"msg_");
        let mut digits = [0; 20];
        let digits = decimal(self.id, &mut digits);
        id.buf[4..4 + digits.len()].copy_from_slice(digits);
        id.len = (4 + digits.len()) as u8;
        id
    }
}

/// An event's JSON, held through the event (see [`Event::json_bytes`]).
struct JsonOf(Arc<Event>);

impl AsRef<[u8]> for JsonOf {
    fn as_ref(&self) -> &[u8] {
        &self.0.json
    }
}

/// A webhook message id written on the stack (see [`Event::message_id_on_stack`]).
pub struct MessageId {
    buf: [u8; 24],
    len: u8,
}

impl MessageId {
    /// `msg_<id>`.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len as usize]).expect("ASCII digits")
    }
}

/// `n` in decimal digits, written into `buf`.
pub(crate) fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// A client's position: for each of its topics, in the order it listed them, the last seq seen.
///
/// On the wire it is the seqs joined by commas (`"5,0,17"`), opaque to anyone but the server
/// that issued it, the way real feeds hand out cursors.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cursor(pub Vec<Seq>);

impl Cursor {
    /// A cursor at the start of `n` topics.
    pub fn start(n: usize) -> Cursor {
        Cursor(vec![0; n])
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

impl FromStr for Cursor {
    type Err = String;
    fn from_str(s: &str) -> Result<Cursor, String> {
        if s.is_empty() {
            return Ok(Cursor(Vec::new()));
        }
        s.split(',')
            .map(|p| {
                p.trim()
                    .parse::<Seq>()
                    .map_err(|_| format!("cursor part {p:?} is not a sequence number"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Cursor)
    }
}

/// Parses a comma-separated topic list such as `"0,3"` and checks it with [`check_topics`].
pub fn parse_topics(s: &str, topic_count: u32) -> Result<Vec<TopicId>, String> {
    let topics = s
        .split(',')
        .map(|p| {
            p.trim()
                .parse::<TopicId>()
                .map_err(|_| format!("topic {p:?} is not a topic number"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    check_topics(&topics, topic_count)?;
    Ok(topics)
}

/// A client's topic list must name at least one topic, each existing and named once.
pub fn check_topics(topics: &[TopicId], topic_count: u32) -> Result<(), String> {
    if topics.is_empty() {
        return Err("at least one topic is needed".into());
    }
    if let Some(t) = topics.iter().find(|t| **t >= topic_count) {
        return Err(format!("topic {t} does not exist (topics are 0..{topic_count})"));
    }
    if let Some(t) = topics
        .iter()
        .enumerate()
        .find_map(|(i, t)| topics[..i].contains(t).then_some(t))
    {
        return Err(format!("topic {t} is listed twice"));
    }
    Ok(())
}

/// Joins topics into the comma-separated form [`parse_topics`] reads.
pub fn format_topics(topics: &[TopicId]) -> String {
    topics.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_json_round_trips_and_has_payload_of_requested_size() {
        let wire = WireEvent {
            id: 7,
            topic: 2,
            seq: 3,
            scheduled_ns: 10,
            emitted_ns: 12,
            measured: true,
        };
        let ev = Event::new(wire, 100);
        assert_eq!(decode(&ev.json).unwrap(), wire);
        let v: serde_json::Value = serde_json::from_slice(&ev.json).unwrap();
        assert_eq!(v["payload"].as_str().unwrap().len(), 100);
    }

    #[test]
    fn a_body_of_the_json_holds_the_event_and_lets_it_go_with_its_last_clone() {
        let wire = WireEvent {
            id: 1,
            topic: 0,
            seq: 1,
            scheduled_ns: 0,
            emitted_ns: 0,
            measured: true,
        };
        let ev = Arc::new(Event::new(wire, 10));
        let body = ev.json_bytes();
        let again = body.clone();
        assert_eq!(&body[..], &ev.json[..]);
        // The bodies share one hold on the event, not a copy of its text ...
        assert_eq!(Arc::strong_count(&ev), 2);
        assert_eq!(again.as_ptr(), ev.json.as_ptr());
        drop(body);
        assert_eq!(Arc::strong_count(&ev), 2);
        // ... and nothing of them stays with the event once the last one is gone.
        drop(again);
        assert_eq!(Arc::strong_count(&ev), 1);
    }

    #[test]
    fn cursor_round_trips() {
        let c = Cursor(vec![5, 0, 17]);
        assert_eq!(c.to_string(), "5,0,17");
        assert_eq!("5,0,17".parse::<Cursor>().unwrap(), c);
        assert!("5,x".parse::<Cursor>().is_err());
    }

    #[test]
    fn topics_are_checked_against_the_topic_count() {
        assert_eq!(parse_topics("0,3", 4).unwrap(), vec![0, 3]);
        assert!(parse_topics("4", 4).is_err());
        assert!(parse_topics("", 4).is_err());
        assert_eq!(parse_topics("1,2,1", 4).unwrap_err(), "topic 1 is listed twice");
    }
}

/// A way of telling clients that something happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// GET events after a cursor every interval.
    Poll,
    /// The same, with `If-None-Match`; `304` when nothing is new.
    ConditionalPoll,
    /// GET that the server holds until an event arrives or the wait ends.
    LongPoll,
    /// One `text/event-stream` per client.
    Sse,
    /// One WebSocket per client.
    Websocket,
    /// The server POSTs each event to each subscriber's URL.
    Webhook,
}

impl Mode {
    /// Every mode, in the order reports list them.
    pub const ALL: [Mode; 6] = [
        Mode::Poll,
        Mode::ConditionalPoll,
        Mode::LongPoll,
        Mode::Sse,
        Mode::Websocket,
        Mode::Webhook,
    ];

    /// The name used in scenario files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Poll => "poll",
            Mode::ConditionalPoll => "conditional_poll",
            Mode::LongPoll => "long_poll",
            Mode::Sse => "sse",
            Mode::Websocket => "websocket",
            Mode::Webhook => "webhook",
        }
    }

    /// Whether the server holds a stream to each client (SSE, WebSocket).
    pub fn streams(self) -> bool {
        matches!(self, Mode::Sse | Mode::Websocket)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown mode `{s}`"))
    }
}
