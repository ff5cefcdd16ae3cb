//! The WebSocket streams' send buffers in the model. The server gathers each batch of frames
//! in its connection's one write buffer (tungstenite's `Vec`) before writing them out, and the
//! buffer keeps the size it grew to while the connection lasts: one frame's for a stream
//! written an event at a time, the whole backlog's (grown by doubling, written out past
//! [`SERVER_WRITE_BUFFER`]) for one that resumed after a cut. The calibration's runs write
//! one event at a time, so their memory per connection holds one frame of their events; what
//! a model's buffers hold beyond that is added at its size in bytes, not fitted.
//!
//! SSE writes each batch as a chunk of its own, freed once written, so its streams keep no
//! such buffer (measured: the same memory per connection for events of 256 and 2,048 bytes,
//! and after a cut; a WebSocket's grew with both).

use crate::event::{Event, WireEvent};
use crate::modes::stream::BACKLOG_CHUNK;
use crate::modes::websocket::SERVER_WRITE_BUFFER;

/// Each client's send buffer while its stream lasts (the stream model knows which are open).
#[derive(Debug)]
pub(super) struct SendBuffers {
    /// Bytes each client's buffer has grown to.
    size: Vec<u64>,
    /// Bytes of one frame carrying one of the scenario's events.
    frame: u64,
}

impl SendBuffers {
    /// Empty buffers for `clients` streams of events on `topics` topics carrying
    /// `payload_bytes`.
    pub fn new(clients: usize, topics: u32, payload_bytes: usize) -> SendBuffers {
        SendBuffers {
            size: vec![0; clients],
            frame: frame_bytes(topics, payload_bytes),
        }
    }

    /// Client `c`'s stream was written `frames` events in one batch.
    pub fn wrote(&mut self, c: u32, frames: usize) {
        let size = &mut self.size[c as usize];
        *size = grown(*size, frames, self.frame);
    }

    /// Client `c`'s stream opened afresh (its last buffer went with its last connection) and
    /// was written its backlog, `frames` events at most in one batch.
    pub fn reopened(&mut self, c: u32, frames: usize) {
        self.size[c as usize] = grown(0, frames, self.frame);
    }

    /// What the buffers of the streams `open` says are open hold.
    pub fn held(&self, open: impl Fn(u32) -> bool) -> SendBuffered {
        let mut held = SendBuffered { bytes: 0, streams: 0 };
        for (c, &size) in self.size.iter().enumerate() {
            if open(c as u32) {
                held.bytes += size;
                held.streams += 1;
            }
        }
        held
    }
}

/// What the WebSocket streams open at a run's end held in their send buffers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SendBuffered {
    /// Bytes, over every open stream.
    pub bytes: u64,
    /// Open streams.
    pub streams: u64,
}

impl SendBuffered {
    /// Bytes beyond one frame each of events carrying `calibrated_payload` bytes on one of
    /// `topics` topics (what the calibration's connections held).
    pub fn beyond(&self, topics: u32, calibrated_payload: usize) -> f64 {
        self.bytes as f64 - self.streams as f64 * frame_bytes(topics, calibrated_payload) as f64
    }
}

/// Bytes of the WebSocket frame that carries an event of `payload_bytes` on one of `topics`
/// topics: its JSON (with ids and times of a long run's size) and the frame's head, which
/// the server does not mask (RFC 6455 §5.2: 2 bytes, 4 from 126 bytes of payload, 10 from
/// 65,536).
pub(super) fn frame_bytes(topics: u32, payload_bytes: usize) -> u64 {
    let json = event_json_bytes(topics, payload_bytes) as u64;
    json + frame_head(json)
}

/// Bytes of the head of an unmasked frame of `payload` bytes.
fn frame_head(payload: u64) -> u64 {
    match payload {
        0..126 => 2,
        126..65_536 => 4,
        _ => 10,
    }
}

/// Bytes of the JSON of an event of `payload_bytes` on one of `topics` topics, its ids and
/// times as large as a long run's.
pub(super) fn event_json_bytes(topics: u32, payload_bytes: usize) -> usize {
    let wire = WireEvent {
        id: 1 << 32,
        topic: topics.saturating_sub(1),
        seq: 1 << 20,
        scheduled_ns: 1 << 40,
        emitted_ns: 1 << 40,
        measured: true,
    };
    Event::new(wire, payload_bytes).json.len()
}

/// The size a buffer of `size` bytes grows to for a batch of `frames` frames of `frame`
/// bytes: as a `Vec` reserves room (at least twice what it had), written out and emptied
/// (keeping its size) once it holds more than [`SERVER_WRITE_BUFFER`]. The backlog comes in
/// batches of at most [`BACKLOG_CHUNK`] events.
fn grown(mut size: u64, frames: usize, frame: u64) -> u64 {
    let mut len = 0;
    for _ in 0..frames.min(BACKLOG_CHUNK) {
        let need = len + frame;
        if need > size {
            size = need.max(2 * size);
        }
        len = need;
        if len > SERVER_WRITE_BUFFER as u64 {
            len = 0;
        }
    }
    size
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_doubles_to_hold_its_largest_batch_and_keeps_that_size() {
        // By hand, 100-byte frames: 1 → 100; 3 more in a batch: 100, 200, 400 (300 needed);
        // a batch of 2 after fits in 400. Reopened, it starts empty: 100, 200, 400, 800 for 5.
        let mut b = SendBuffers {
            size: vec![0, 0],
            frame: 100,
        };
        b.wrote(0, 1);
        assert_eq!(b.size[0], 100);
        b.wrote(0, 3);
        assert_eq!(b.size[0], 400);
        b.wrote(0, 2);
        assert_eq!(b.size[0], 400);
        b.wrote(1, 20);
        b.reopened(1, 5);
        assert_eq!(b.size[1], 800);
        b.reopened(1, 0);
        assert_eq!(b.size[1], 0);
    }

    #[test]
    fn a_batch_past_the_write_buffer_is_written_out_as_it_goes() {
        // 10,000-byte frames, a 65,536-byte bound: 7 frames (70,000) pass it and go out, so
        // the buffer never needs more than 70,000: 10k, 20k, 40k, 80k.
        let frame = 10_000;
        assert_eq!(grown(0, 7, frame), 80_000);
        assert_eq!(grown(0, 200, frame), 80_000);
        // A backlog past one chunk comes in chunks, each a batch of its own.
        assert_eq!(grown(0, 10_000, 10), grown(0, BACKLOG_CHUNK, 10));
    }

    #[test]
    fn a_frame_is_the_events_json_and_a_head_of_two_four_or_ten_bytes() {
        let json = event_json_bytes(50, 512);
        assert!(json > 512 && json < 512 + 200, "{json}");
        assert_eq!(frame_bytes(50, 512), json as u64 + 4);
        assert_eq!(frame_bytes(50, 70_000), event_json_bytes(50, 70_000) as u64 + 10);
        let heads = [0, 125, 126, 65_535, 65_536].map(frame_head);
        assert_eq!(heads, [2, 2, 4, 4, 10]);
    }

    #[test]
    fn what_the_buffers_hold_is_counted_beyond_the_calibrations_frame() {
        let mut b = SendBuffers::new(3, 50, 512);
        let frame = frame_bytes(50, 512) as f64;
        b.wrote(0, 1);
        b.wrote(1, 2);
        b.wrote(2, 4);
        // The third stream is closed: only the first two count.
        let held = b.held(|c| c < 2);
        assert_eq!(held.streams, 2);
        // Against the same events: 0 for the stream written one at a time, a frame more for
        // the one written two at once.
        assert!((held.beyond(50, 512) - frame).abs() < 1e-9, "{held:?}");
        let smaller = frame_bytes(50, 256) as f64;
        assert!((held.beyond(50, 256) - (3.0 * frame - 2.0 * smaller)).abs() < 1e-9);
    }
}
