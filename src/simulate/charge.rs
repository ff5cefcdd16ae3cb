//! What a model's run cost its server, at the calibration's prices: the CPU of each
//! operation its cores served and of the work that waits on no request, bytes per request and
//! delivery, memory per connection held; and, in words, where the modelled server could not keep up.

use super::server::Server;
use super::{Model, Outcome};
use crate::calibration::{Held, Op};
use crate::event::Mode;
use crate::results::{ServerCost, TcpReading};
use crate::scenario::Scenario;

/// What the model's operations cost at the calibration's prices: CPU for the operations the
/// cores served and for the background (the window's seconds, its clients held, its events
/// published), bytes per request and delivery, memory as the calibration's fixed part and
/// part per connection, for the most connections the model held (and the parts it has for
/// the webhook sender's endpoints and attempts a second, and for the pollers' mean page; and
/// what the WebSocket streams' send buffers held beyond the calibration's, at its size). A
/// connection turned away is priced as a connection opened.
pub(super) fn charged(s: &Scenario, mode: Mode, model: &Model, server: &Server, o: &Outcome) -> ServerCost {
    let c = &model.calibration;
    let seconds = s.duration.as_secs_f64();
    let clients = f64::from(s.clients.count);
    // The clients the server held: webhook endpoints hold nothing of its listener's, the
    // others at most its `max_connections`.
    let held_clients = match (mode, s.server.max_connections) {
        (Mode::Webhook, _) | (_, None) => clients,
        (_, Some(most)) => clients.min(most as f64),
    };
    let mut counts = server.counts;
    counts.set(Op::Second, seconds);
    counts.set(Op::ClientSecond, held_clients * seconds);
    counts.set(Op::Event, o.events as f64);
    let (requests, delivered) = (o.requests as f64, o.delivered as f64);
    let (read, written) = model.bytes(s, mode).map_or((0.0, 0.0), |b| {
        (
            b.read_per_request * requests + b.read_per_delivery * delivered,
            b.written_for(requests, o.empty as f64, delivered),
        )
    });
    // Connections opened in the window: the model's are those it turned away or a stream
    // reopened (its clients' first connections are open before the window). A stream's
    // heartbeat goes as a frame does (out, and its ACK back); a WebSocket ping is answered by
    // the client's pong, which carries that ACK and takes one of its own: a segment more.
    let beats = o.heartbeats as f64;
    let pongs = if mode == Mode::Websocket { beats } else { 0.0 };
    let tcp = c
        .packets(mode)
        .map_or(TcpReading::NotRead, |p| TcpReading::Modelled {
            segments: (p.segments(requests, delivered + beats, counts.get(Op::Connection)) + pongs).round()
                as u64,
        });
    let held = c.memory(mode).map_or(0.0, |m| {
        m.held(&Held {
            connections: o.peak_connections,
            endpoints: clients,
            attempts_per_second: requests / seconds,
            page_bytes: written / (requests - o.empty as f64).max(1.0),
            send_buffer_bytes: o.send_buffers.map_or(0.0, |b| {
                let calibrated = c
                    .bytes(mode)
                    .map_or(s.events.payload_bytes, |b| b.payload_bytes as usize);
                b.beyond(s.events.topics, calibrated)
            }),
        })
    });
    ServerCost {
        requests: o.requests,
        requests_per_second: requests / seconds,
        empty_responses: o.empty,
        peak_connections: o.peak_connections,
        connections_refused: o.connections_refused,
        cpu_seconds: c.cpu_seconds(&counts),
        bytes_read: read.round() as u64,
        bytes_written: written.round() as u64,
        memory_per_client_bytes: held / clients.max(1.0),
        webhook: o.sender,
        deliveries_in_window: Some(o.delivered),
        tcp,
        ..ServerCost::default()
    }
    .with_ratios(o.delivered)
}

/// What the model's server could not keep up with, in words: work that waits on no request
/// taking the cores by itself, or the window's work needing more cores than it had.
pub(super) fn saturation(s: &Scenario, cores: u32, server: &Server, cpu_seconds: f64) -> Vec<String> {
    let mut out = Vec::new();
    let cores_f = f64::from(cores);
    if server.background_cores >= cores_f {
        out.push(format!(
            "the modelled server's work that waits on no request (the process, its {} clients held, {} events/s \
             published) needs {:.1} cores of the {cores} it has: every answer waits behind it",
            s.clients.count,
            s.mean_event_rate(),
            server.background_cores
        ));
    }
    let needed = cpu_seconds / s.duration.as_secs_f64();
    if needed > super::capacity::BUSIEST * cores_f {
        out.push(format!(
            "the modelled server's {cores} cores were saturated: the window's work needed {needed:.1} cores, so \
             requests queued for them"
        ));
    }
    out
}

/// What the model charged without a price of its own because the calibration's runs never
/// carried it out, in words: a webhook retry (no receiver of its runs failed), a reply from
/// afar (all its runs were on loopback).
pub(super) fn unpriced(model: &Model, server: &Server, o: &Outcome) -> Vec<String> {
    let c = &model.calibration;
    let mut out = Vec::new();
    if o.sender.retries > 0 && !c.measured(Op::WebhookRetry) {
        out.push(format!(
            "the calibration's runs had no receiver that failed, so it has no price for a retry: the model \
             charges the sender's {} retries as first attempts, without what handling each failure costs",
            o.sender.retries
        ));
    }
    if server.unpriced_from_afar > 0 {
        out.push(format!(
            "the calibration's runs were all on loopback, so it has no price for a reply from afar: the model \
             charges the {} replies that came back later than its idle threshold after their write as though \
             they came at the longest wait of its runs, about one wake-up for a fan-out's replies, where over a \
             round trip each comes back alone",
            server.unpriced_from_afar
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::simulate::mode_result;

    /// A calibration that charges only `costs` (ns each), on `cores` cores.
    fn priced(costs: &[(Op, f64)]) -> crate::calibration::Calibration {
        let mut c = crate::calibration::Calibration::reference();
        for cost in &mut c.cpu {
            cost.cpu_ns = costs
                .iter()
                .find(|(op, _)| *op == cost.op)
                .map_or(0.0, |(_, ns)| *ns);
        }
        c
    }

    #[test]
    fn the_server_is_charged_the_calibrated_cost_of_what_it_did() {
        // 10 SSE clients on one topic, 100 events/s for 10 s: CPU = 10 s × 1 ms + each event
        // published × 10 µs + each of the 10 writes per event × 2 µs, by hand.
        let s = Scenario::parse(
            Path::new("c.toml"),
            "name = \"c\"\nduration = \"10s\"\nwarmup = \"0s\"\nmodes = [\"sse\"]\n\
             [events]\nrate = 100\n[clients]\ncount = 10\n",
        )
        .unwrap();
        let c = priced(&[(Op::Second, 1e6), (Op::Event, 10e3), (Op::SseEvent, 2e3)]);
        let model = Model::new(Some(Duration::from_millis(1)), c);
        let m = mode_result(&s, Mode::Sse, &model, &crate::simulate::quietly);
        let events = m.deliveries.events_measured as f64;
        assert_eq!(m.deliveries.delivered as f64, 10.0 * events);
        let by_hand = 10.0 * 1e-3 + events * 10e-6 + 10.0 * events * 2e-6;
        assert!(
            (m.server.cpu_seconds / by_hand - 1.0).abs() < 1e-9,
            "{} vs {by_hand}",
            m.server.cpu_seconds
        );
        // Each event's ten writes queue on the two cores: the last follower waits for
        // five writes, 10 µs, after the 0.5 ms one way.
        assert!((m.latency.max_ms - 0.51).abs() < 0.005, "{:?}", m.latency);
    }

    #[test]
    fn the_webhook_senders_memory_counts_its_connections_endpoints_and_attempts_a_second() {
        // 40 endpoints on one topic, 10 events a second evenly spaced for 10 s, each answered
        // at the first attempt: 400 attempts a second. Its memory, by hand: 1 MB + 20 KB for
        // each connection its pools held at most + 1 KB for each endpoint + 300 B for each
        // attempt a second.
        let s = Scenario::parse(
            Path::new("w.toml"),
            "name = \"w\"\nduration = \"10s\"\nwarmup = \"0s\"\nmodes = [\"webhook\"]\n\
             [events]\nrate = 10\narrival = \"constant\"\ntopics = 1\n[clients]\ncount = 40\n",
        )
        .unwrap();
        let mut c = priced(&[]);
        let w = c.memory.iter_mut().find(|m| m.mode == Mode::Webhook).unwrap();
        (w.fixed_bytes, w.per_connection_bytes) = (1e6, 20e3);
        (w.per_endpoint_bytes, w.per_attempt_per_second_bytes) = (1e3, 300.0);
        let model = Model::new(Some(Duration::from_millis(1)), c);
        let m = mode_result(&s, Mode::Webhook, &model, &crate::simulate::quietly);
        assert!(
            (m.server.requests_per_second / 400.0 - 1.0).abs() < 0.01,
            "{}",
            m.server.requests_per_second
        );
        let peak = m.server.peak_connections as f64;
        assert!(peak >= 1.0, "{peak}");
        let by_hand = 1e6 + 20e3 * peak + 1e3 * 40.0 + 300.0 * 400.0;
        let held = m.server.memory_per_client_bytes * 40.0;
        assert!((held / by_hand - 1.0).abs() < 0.01, "{held} vs {by_hand}");
    }

    #[test]
    fn a_pollers_memory_counts_its_connections_and_its_mean_page() {
        // 10 pollers of one topic asking 1 s after each answer, 20 events a second: pages of
        // about 20 events. Each event written is 500 bytes and each answer's head 200 (the
        // calibration's bytes, for its own payload): about 10,200 bytes a page. Memory, by
        // hand: 1 MB + 16 KB for each connection + 4 bytes for each byte of the mean page.
        let s = Scenario::parse(
            Path::new("p.toml"),
            "name = \"p\"\nduration = \"20s\"\nwarmup = \"2s\"\nmodes = [\"poll\"]\n\
             [events]\nrate = 20\narrival = \"constant\"\ntopics = 1\n[clients]\ncount = 10\n\
             [poll]\ninterval = \"1s\"\nschedule = \"after_answer\"\n",
        )
        .unwrap();
        let mut c = priced(&[]);
        let p = c.memory.iter_mut().find(|m| m.mode == Mode::Poll).unwrap();
        (p.fixed_bytes, p.per_connection_bytes, p.per_page_byte) = (1e6, 16e3, 4.0);
        let b = c.bytes.iter_mut().find(|b| b.mode == Mode::Poll).unwrap();
        (b.written_per_request, b.written_per_delivery) = (200.0, 500.0);
        b.payload_bytes = s.events.payload_bytes as f64;
        let model = Model::new(Some(Duration::from_millis(1)), c);
        let m = mode_result(&s, Mode::Poll, &model, &crate::simulate::quietly);
        assert_eq!(m.server.empty_responses, 0, "every poll finds about 20 events");
        let page = m.server.bytes_written as f64 / m.server.requests as f64;
        assert!((page / 10_200.0 - 1.0).abs() < 0.02, "{page}");
        let by_hand = 1e6 + 16e3 * 10.0 + 4.0 * page;
        let held = m.server.memory_per_client_bytes * 10.0;
        assert!((held / by_hand - 1.0).abs() < 1e-9, "{held} vs {by_hand}");
    }

    #[test]
    fn past_the_cores_capacity_the_queue_grows_and_latency_with_it() {
        // 200 pollers every 100 ms, each empty poll 1 ms of CPU: 2,000 polls/s need 2 cores.
        // On 4 cores they are answered in about a millisecond; on 1 they queue for seconds.
        let s = Scenario::parse(
            Path::new("k.toml"),
            "name = \"k\"\nduration = \"20s\"\nwarmup = \"0s\"\nmodes = [\"poll\"]\n\
             [events]\nrate = 1\n[clients]\ncount = 200\n[poll]\ninterval = \"100ms\"\nschedule = \"after_answer\"\n",
        )
        .unwrap();
        let c = priced(&[(Op::EmptyPoll, 1e6), (Op::Page, 1e6)]);
        let on = |cores: u32| {
            let mut model = Model::new(Some(Duration::ZERO), c.clone());
            model.cores = cores;
            mode_result(&s, Mode::Poll, &model, &crate::simulate::quietly)
        };
        let (roomy, starved) = (on(4), on(1));
        assert!(roomy.warnings.is_empty(), "{:?}", roomy.warnings);
        assert!(
            starved
                .warnings
                .iter()
                .any(|w| w.contains("1 cores were saturated")),
            "{:?}",
            starved.warnings
        );
        // After an answer each client waits 100 ms: with room, ~2,000 polls/s; on one core
        // the core's 1,000 polls/s is all there is.
        assert!(
            roomy.server.requests_per_second > 1800.0,
            "{}",
            roomy.server.requests_per_second
        );
        assert!(
            (starved.server.requests_per_second / 1000.0 - 1.0).abs() < 0.02,
            "{}",
            starved.server.requests_per_second
        );
        assert!(
            starved.latency.p50_ms > 1.5 * roomy.latency.p50_ms,
            "{:?} {:?}",
            starved.latency,
            roomy.latency
        );
    }

    /// One client, no event in the window (the schedule's first, at 0, falls in the
    /// warm-up; the next comes 10,000 s later on average), a heartbeat every second, over a
    /// window of 20 s.
    fn quiet_stream() -> Scenario {
        Scenario::parse(
            Path::new("h.toml"),
            "name = \"h\"\nduration = \"20s\"\nwarmup = \"1s\"\nmodes = [\"sse\", \"websocket\"]\n\
             [events]\nrate = 0.0001\n[clients]\ncount = 1\n[sse]\nheartbeat = \"1s\"\n\
             [websocket]\nheartbeat = \"1s\"\n",
        )
        .unwrap()
    }

    #[test]
    fn a_quiet_streams_heartbeats_go_as_frames_and_a_websocket_ping_takes_its_pong_too() {
        // A quiet stream: about 20 heartbeats in the window, as the phase falls. At 2
        // segments a frame, by hand: an SSE comment and its ACK, 2 each; a WebSocket ping,
        // the pong that ACKs it and the pong's own ACK, 3 each. The same clock beats both
        // streams alike.
        let s = quiet_stream();
        let mut c = priced(&[]);
        for p in &mut c.packets {
            (p.per_request, p.per_delivery, p.per_connection) = (0.0, 2.0, 0.0);
        }
        let model = Model::new(Some(Duration::from_millis(1)), c);
        let segments = |mode| {
            let m = mode_result(&s, mode, &model, &crate::simulate::quietly);
            assert_eq!(m.deliveries.delivered, 0, "{mode}: the stream stays quiet");
            m.server.tcp.segments().expect("packets are modelled")
        };
        let (sse, websocket) = (segments(Mode::Sse), segments(Mode::Websocket));
        assert!(
            (38..=42).contains(&sse),
            "{sse} segments: about 20 comments and their ACKs"
        );
        assert_eq!(websocket * 2, sse * 3, "{websocket} segments against SSE's {sse}");
    }

    #[test]
    fn a_quiet_streams_heartbeats_cost_the_server_a_write_and_a_wake_up_each() {
        // A quiet stream: 20 heartbeats in the window (as above), each written by the
        // stream's timer a second after the last, the cores long idle. By hand: 20 × (a
        // write of 2 µs + a request's wake-up of 100 µs, the timer firing in a parked
        // worker's poll as a request's readiness does).
        let s = quiet_stream();
        let c = priced(&[
            (Op::SseEvent, 2e3),
            (Op::WebsocketEvent, 2e3),
            (Op::RequestWake, 100e3),
        ]);
        let model = Model::new(Some(Duration::from_millis(1)), c);
        for mode in [Mode::Sse, Mode::Websocket] {
            let m = mode_result(&s, mode, &model, &crate::simulate::quietly);
            assert_eq!(m.deliveries.delivered, 0, "{mode}: the stream stays quiet");
            let by_hand = 20.0 * (2e-6 + 100e-6);
            assert!(
                (m.server.cpu_seconds / by_hand - 1.0).abs() < 1e-9,
                "{mode}: {} vs {by_hand}",
                m.server.cpu_seconds
            );
        }
    }

    #[test]
    fn packets_come_from_a_calibration_that_fitted_them_and_not_from_one_that_did_not() {
        let s = Scenario::parse(
            Path::new("p.toml"),
            "name = \"p\"\nduration = \"20s\"\nmodes = [\"sse\", \"poll\"]\n[events]\nrate = 10\n\
             [clients]\ncount = 5\n",
        )
        .unwrap();
        let reference = crate::calibration::Calibration::reference();
        let model = Model::new(Some(Duration::from_millis(2)), reference.clone());
        for mode in [Mode::Sse, Mode::Poll] {
            let m = mode_result(&s, mode, &model, &crate::simulate::quietly);
            let p = reference.packets(mode).expect("the reference fits packets");
            let (requests, delivered) = (m.server.requests as f64, m.window_deliveries() as f64);
            // No connection opens in the window: the clients connect before it.
            assert_eq!(
                m.server.tcp.segments(),
                Some(p.segments(requests, delivered, 0.0).round() as u64),
                "{mode}"
            );
        }
        let mut without = reference;
        without.packets.clear();
        let m = mode_result(
            &s,
            Mode::Sse,
            &Model::new(Some(Duration::from_millis(2)), without),
            &crate::simulate::quietly,
        );
        assert_eq!(m.server.tcp.segments(), None);
    }
}
