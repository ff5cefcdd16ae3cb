//! What a model's run cost its server, at the calibration's prices: the CPU of each
//! operation its cores served and of the work that waits on no request, bytes per request and
//! delivery, memory per connection held; and, in words, where the modelled server could not keep up.

use super::server::Server;
use super::waits;
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
    // Connections opened in the window: the model's are those it turned away, a stream
    // reopened, or a poller's request opened (its first, or one after the server closed its
    // idle connection); the other clients' first connections are open before the window. A stream's
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
        cpu_calibration_loadings: c.cpu_loadings(&counts).iter().map(|ns| ns / 1e9).collect(),
        bytes_read: read.round() as u64,
        bytes_written: written.round() as u64,
        memory_per_client_bytes: held / clients.max(1.0),
        webhook: o.sender,
        deliveries_in_window: Some(o.in_window),
        heartbeats: mode.streams().then_some(o.heartbeats),
        tcp,
        ..ServerCost::default()
    }
    .with_ratios(o.in_window)
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
    let busiest = super::capacity::BUSIEST;
    if needed > busiest * cores_f {
        out.push(format!(
            "the modelled server's {cores} cores were saturated: the window's work needed {needed:.1} cores, so \
             requests queued for them"
        ));
    } else {
        let spans = server.busy_spans(busiest);
        if !spans.is_empty() {
            let (wait, at) = server.longest_wait;
            out.push(format!(
                "the modelled server's {cores} cores were busy {:.0}% of the time or more in part of the window \
                 ({} since the schedule started), though the window's work as a whole needed {needed:.1} cores: \
                 jobs waited up to {} for a core (the longest at {:.1} s)",
                busiest * 100.0,
                waits::in_words(&spans),
                waits::wait_in_words(wait),
                at as f64 / 1e9
            ));
        }
    }
    out
}

/// Where the webhook sender's workers were all busy, in words: deliveries ready in the
/// measured window that waited for one (`[webhook] concurrency`), however idle the cores.
pub(super) fn sender_saturation(s: &Scenario, o: &Outcome) -> Option<String> {
    let spans = o.worker_waits.spans();
    let (wait, at) = o.worker_waits.longest;
    (!spans.is_empty()).then(|| {
        format!(
            "the webhook sender's {} workers were all busy in part of the window ({} since the schedule \
             started): deliveries waited up to {} for one (the longest ready at {:.1} s), each attempt holding \
             its worker until its answer or its timeout",
            s.webhook.concurrency,
            waits::in_words(&spans),
            waits::wait_in_words(wait),
            at as f64 / 1e9
        )
    })
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
#[path = "charge_tests.rs"]
mod tests;
