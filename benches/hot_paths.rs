//! Criterion benchmarks of the hot paths: event encoding, log append and read after a
//! cursor, webhook signing and verification, latency recording, SSE parsing, and each stream
//! client's work per event (its frames read and each event decoded), SSE beside WebSocket,
//! and a poller's per page.

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use pushpull::event::{Event, WireEvent};
use pushpull::modes::sse::SseParser;
use pushpull::modes::webhook::signature::Secret;
use pushpull::recorder::{Ledger, Recorder, Timeline};
use pushpull::scenario::Retention;
use pushpull::server::log::EventLog;

fn wire(seq: u64) -> WireEvent {
    WireEvent {
        id: seq,
        topic: 0,
        seq,
        scheduled_ns: 1,
        emitted_ns: 2,
        measured: true,
    }
}

fn encoding(c: &mut Criterion) {
    let mut g = c.benchmark_group("event");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode_256B", |b| b.iter(|| Event::new(black_box(wire(7)), 256)));
    // Clock stamps as a run writes them: nanoseconds since boot, 16 digits.
    let ev = Event::new(
        WireEvent {
            scheduled_ns: 4_321_987_654_321_012,
            emitted_ns: 4_321_987_654_398_765,
            ..wire(123_456)
        },
        256,
    );
    g.bench_function("decode_256B", |b| {
        b.iter(|| pushpull::event::decode(black_box(&ev.json)).unwrap())
    });
    // The same with serde alone, beside it: what reading the server's form directly saves.
    g.bench_function("decode_256B_serde", |b| {
        b.iter(|| serde_json::from_slice::<WireEvent>(black_box(&ev.json)).unwrap())
    });
    g.finish();
}

fn log(c: &mut Criterion) {
    let retention = Retention {
        count: 100_000,
        age: Duration::from_secs(600),
    };
    let mut g = c.benchmark_group("log");
    g.throughput(Throughput::Elements(1));
    let log = EventLog::new(1, &retention);
    g.bench_function("append", |b| {
        b.iter(|| log.append(0, |seq| Event::new(wire(seq), 64)))
    });
    let log = EventLog::new(1, &retention);
    for _ in 0..10_000 {
        log.append(0, |seq| Event::new(wire(seq), 64));
    }
    g.throughput(Throughput::Elements(100));
    g.bench_function("read_after_cursor_100", |b| {
        b.iter(|| log.read_after(0, black_box(5_000), 100).unwrap())
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("has_news", |b| b.iter(|| log.has_news(0, black_box(10_000))));
    g.finish();
}

fn signature(c: &mut Criterion) {
    let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let body = Event::new(wire(1), 256).json;
    let mut g = c.benchmark_group("signature");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign_256B", |b| {
        b.iter(|| secret.sign(black_box("msg_1"), 1_700_000_000, &body))
    });
    let sig = secret.sign("msg_1", 1_700_000_000, &body);
    g.bench_function("verify_256B", |b| {
        b.iter(|| {
            secret
                .verify(
                    Some("msg_1"),
                    Some("1700000000"),
                    Some(&sig),
                    &body,
                    1_700_000_010,
                )
                .unwrap()
        })
    });
    g.finish();
}

fn recording(c: &mut Criterion) {
    let mut g = c.benchmark_group("recorder");
    g.throughput(Throughput::Elements(1));
    // A started run, as in a real one: each delivery is also filed by second and checked for
    // lateness (no fault windows).
    let recorder = Arc::new(Recorder::default());
    recorder.start(Timeline {
        start_ns: 0,
        measured_ns: (0, u64::MAX),
        late_after_ns: 250_000_000,
        windows: Vec::new(),
    });
    let mut ledger = Ledger::new(0, vec![0], recorder.clone());
    let mut seq = 0;
    g.bench_function("observe_in_order", |b| {
        b.iter(|| {
            seq += 1;
            ledger.observe_at(&wire(seq), 1_000_000)
        })
    });
    // As in a fan-out: a thousand clients, each event reaching each in turn, latencies
    // spread over a few milliseconds.
    let mut ledgers: Vec<Ledger> = (0..1000)
        .map(|c| Ledger::new(c, vec![0], recorder.clone()))
        .collect();
    let mut seq = 0;
    g.bench_function("observe_1000_clients_in_turn", |b| {
        b.iter_custom(|iters| {
            let start = std::time::Instant::now();
            let mut left = iters;
            while left > 0 {
                seq += 1;
                let ev = wire(seq);
                for (i, l) in ledgers.iter_mut().take(left as usize).enumerate() {
                    l.observe_at(&ev, 1_000_000 + (i as u64 * 7_919) % 5_000_000);
                }
                left = left.saturating_sub(1000);
            }
            start.elapsed()
        })
    });
    g.finish();
}

fn sse_parsing(c: &mut Criterion) {
    let ev = Event::new(wire(1), 256);
    let mut frames = Vec::new();
    for _ in 0..100 {
        frames.extend_from_slice(b"id: 1\ndata: ");
        frames.extend_from_slice(&ev.json);
        frames.extend_from_slice(b"\n\n");
    }
    let mut g = c.benchmark_group("sse");
    g.throughput(Throughput::Elements(100));
    g.bench_function("parse_100_events", |b| {
        b.iter_batched(
            SseParser::default,
            |mut p| {
                let mut bytes = 0;
                p.feed(black_box(&frames), |f| bytes += f.data.len());
                bytes
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// What a stream client does per event, read off 100 events' worth of bytes as the server
/// writes them: SSE frames parsed and decoded, WebSocket text frames read and decoded.
fn stream_clients(c: &mut Criterion) {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket};

    let events: Vec<Event> = (1..=100).map(|seq| Event::new(wire(seq), 256)).collect();
    let mut sse = Vec::new();
    let mut ws = Vec::new();
    for ev in &events {
        sse.extend_from_slice(format!("id: {}\ndata: ", ev.seq).as_bytes());
        sse.extend_from_slice(&ev.json);
        sse.extend_from_slice(b"\n\n");
        Frame::message(ev.json.clone(), OpCode::Data(Data::Text), true)
            .format(&mut ws)
            .unwrap();
    }
    let mut g = c.benchmark_group("stream_client");
    g.throughput(Throughput::Elements(100));
    g.bench_function("sse_100_events", |b| {
        b.iter_batched(
            SseParser::default,
            |mut p| {
                let mut seqs = 0;
                p.feed(black_box(&sse), |f| {
                    seqs += pushpull::event::decode(f.data).unwrap().seq
                });
                seqs
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("websocket_100_events", |b| {
        b.iter_batched(
            || WebSocket::from_raw_socket(std::io::Cursor::new(ws.clone()), Role::Client, None),
            |mut socket| {
                let mut seqs = 0;
                for _ in 0..100 {
                    let text = socket.read().unwrap().into_data();
                    seqs += pushpull::event::decode(&text).unwrap().seq;
                }
                seqs
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// What a poller or long poller does per page: a page of 40 events, as the server splices
/// it, decoded (payloads skipped).
fn poll_client(c: &mut Criterion) {
    let mut page = b"{\"events\":[".to_vec();
    for seq in 1..=40 {
        if seq > 1 {
            page.push(b',');
        }
        page.extend_from_slice(&Event::new(wire(seq), 256).json);
    }
    page.extend_from_slice(b"],\"next\":\"40\",\"more\":false}");
    let mut g = c.benchmark_group("poll_client");
    g.throughput(Throughput::Elements(40));
    g.bench_function("page_of_40_events", |b| {
        b.iter(|| {
            let page: pushpull::modes::poll::Page = serde_json::from_slice(black_box(&page)).unwrap();
            page.events.len()
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    encoding,
    log,
    signature,
    recording,
    sse_parsing,
    stream_clients,
    poll_client
);
criterion_main!(benches);
