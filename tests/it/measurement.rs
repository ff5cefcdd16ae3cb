//! Every figure covers the window that produced its events, at a resolution finer than what it
//! compares: the regressions behind "Numbers you can defend".

use pushpull::scenario::Scenario;

use crate::util::{assert_all_delivered, run, run_one};

/// 100 pollers, one topic each of 10, 2 events/s per client, polling every 100 ms for 3 s,
/// with a drain as long as an interval.
fn pollers(mode: &str) -> Scenario {
    let text = format!(
        "name = \"window\"\nseed = 5\nduration = \"3s\"\nwarmup = \"500ms\"\ndrain = \"1s\"\nmodes = [\"{mode}\"]\n\
         [events]\nrate = 20\ntopics = 10\npayload_bytes = 64\n[clients]\ncount = 100\n\
         [{mode}]\ninterval = \"100ms\"\njitter = 0.1\n"
    );
    Scenario::parse(std::path::Path::new("window.toml"), &text).expect("valid")
}

/// Runs the one-mode scenario in `text` and checks that it delivered everything it owed.
async fn run_delivered(text: &str) -> pushpull::results::ModeResult {
    let s = Scenario::parse(std::path::Path::new("measure.toml"), text).expect("valid");
    let m = run_one(&s).await;
    assert_all_delivered(&m);
    m
}

#[tokio::test]
async fn poll_costs_cover_the_window_that_made_the_events_not_the_drain() {
    // Regression: requests were counted to the end of the drain, where pollers go on asking
    // and no event is made, so requests per event came out (duration + drain) / duration
    // too high (seed-claims: 2.67 against 2.00).
    let m = run_one(&pollers("poll")).await;
    assert_all_delivered(&m);
    // Pollers ask every T whether or not anything happened: clients × duration / T requests
    // in the window, whatever the events did. Per event, that is over the events it made.
    let asked = 100.0 * 3.0 / 0.1;
    let expected = asked / m.deliveries.delivered as f64;
    let ratio = m.server.requests_per_delivery / expected;
    assert!(
        (0.94..=1.06).contains(&ratio),
        "{} vs {expected}",
        m.server.requests_per_delivery
    );
    assert!((m.measured_seconds - 3.0).abs() < 0.01, "{}", m.measured_seconds);
    // The drain's polls are reported, apart.
    assert!(m.drain.requests > 0, "{:?}", m.drain);
    // And the theory, conditioned on the events drawn, agrees: 1/(λT) and E[e^(−λG)].
    let t = &m.theory;
    assert!(
        (m.server.requests_per_delivery / t.requests_per_delivery - 1.0).abs() < 0.06,
        "{t:?}"
    );
    assert!(
        (m.server.empty_share - t.empty_share).abs() < 0.03,
        "{} vs {t:?}",
        m.server.empty_share
    );
}

#[tokio::test]
async fn the_servers_threads_are_counted_waking_and_preempted_over_the_window() {
    // 1,000 polls a second on 100 ms slots leave the server's workers idle between them: a
    // worker that runs out of work blocks and is woken again, at least once for every ten
    // polls however the scheduler bunches them.
    let m = run_one(&pollers("poll")).await;
    assert_all_delivered(&m);
    let woke = m.server.voluntary_switches.expect("measured");
    assert!(
        woke * 10 >= m.server.requests,
        "{woke} switches for {} polls",
        m.server.requests
    );
    assert!(m.server.involuntary_switches.is_some());
}

#[tokio::test]
async fn pollers_keep_fixed_slots_and_record_how_late_they_sent() {
    let m = run_one(&pollers("poll")).await;
    assert!(m.theory.given.client_event_rate > 0.0);
    let sends = m.poll_sends;
    // Every poll of the run: about 100 clients × 4.5 s / 100 ms.
    assert!(sends.count > 3_000, "{sends:?}");
    assert!(sends.p50_ns < 5_000_000, "{sends:?}");
    // Regression: the histogram clamped everything above ~2 µs to 2 ns. Over thousands of
    // polls woken by a millisecond timer, some leave well over 10 µs late (the clamped
    // histogram could hold nothing above 2,047 ns).
    assert!(sends.max_ns > 10_000 && sends.p99_ns >= sends.p50_ns, "{sends:?}");
    // After each answer, nothing is on a slot, so nothing is late against one.
    let text = "name = \"after\"\nseed = 5\nduration = \"1s\"\nwarmup = \"200ms\"\ndrain = \"300ms\"\n\
                modes = [\"poll\"]\n[events]\nrate = 20\n[clients]\ncount = 10\n\
                [poll]\ninterval = \"100ms\"\nschedule = \"after_answer\"\n";
    let m = run_delivered(text).await;
    assert_eq!(m.poll_sends.count, 0);
}

#[tokio::test]
async fn cpu_is_read_in_nanoseconds_not_in_ticks() {
    // Regression: /proc/self/stat counts in 10 ms ticks, so small runs compared whole ticks.
    let r = run(&pollers("conditional_poll")).await;
    assert!(
        r.environment.cpu_clock.contains("resolution 1 ns"),
        "{}",
        r.environment.cpu_clock
    );
    let m = &r.modes[0];
    let server_ns =
        ((m.server.cpu_seconds + m.server.generator_spin_cpu_seconds + m.server.census_cpu_seconds) * 1e9)
            .round() as u64;
    let driver_ns = (m.client.cpu_seconds * 1e9).round() as u64;
    for ns in [server_ns, driver_ns] {
        assert!(
            ns > 0 && ns % 10_000_000 != 0,
            "{ns} ns is a whole number of ticks"
        );
    }
    // The 1 s samples too.
    assert!(m
        .timeseries
        .iter()
        .any(|s| !((s.server_cpu_seconds * 1e9).round() as u64).is_multiple_of(10_000_000)));
}

#[tokio::test]
async fn a_polling_client_costs_the_memory_of_its_connection() {
    // Regression: memory was read before the pollers' first request (still in their random
    // phase), so a poller seemed to cost 0.1 KiB against 13 KiB for a held connection.
    let m = run_one(&pollers("poll")).await;
    let s = &m.server;
    assert!(s.memory_per_client_bytes > 1024.0, "{s:?}");
    assert!(
        s.rss_steady_bytes > s.rss_baseline_bytes && s.log_bytes > 0,
        "{s:?}"
    );
    assert!(s.peak_rss_bytes >= s.rss_steady_bytes, "{s:?}");
}

#[tokio::test]
async fn push_latency_is_the_delivery_not_the_generators_timer() {
    // Regression: the generator slept on tokio's 1 ms timer, which made ~75% of long-poll
    // latency (p50 1.6 ms from the schedule against 0.43 ms from emission).
    let text = "name = \"push\"\nseed = 3\nduration = \"2s\"\nwarmup = \"300ms\"\ndrain = \"1s\"\n\
                modes = [\"long_poll\"]\n[events]\nrate = 40\ntopics = 4\n[clients]\ncount = 20\n";
    let m = run_delivered(text).await;
    let gap = m.latency.p50_ms - m.latency_from_emission.p50_ms;
    assert!(
        gap.abs() < 0.3,
        "from schedule {} ms, from emission {} ms",
        m.latency.p50_ms,
        m.latency_from_emission.p50_ms
    );
    assert_eq!(
        m.generator.count, m.deliveries.events_measured,
        "{:?}",
        m.generator
    );
    assert!(m.generator.p50_ns <= m.generator.p99_ns && m.generator.p99_ns <= m.generator.max_ns);
}

#[tokio::test]
async fn a_stranger_fetching_as_a_client_makes_the_counts_disagree_and_the_run_fail() {
    // The server counts what it hands each client; the clients count what they receive. A
    // request that borrows client 0's id takes events the client never sees, so the two
    // counts of the same deliveries differ: the run must fail rather than report.
    let server = crate::util::TestServer::start().await;
    let text = "name = \"stranger\"\nseed = 2\nduration = \"1500ms\"\nwarmup = \"300ms\"\ndrain = \"1s\"\n\
                modes = [\"poll\"]\n[events]\nrate = 40\ntopics = 1\n[clients]\ncount = 4\n\
                [poll]\ninterval = \"100ms\"\n";
    let s = Scenario::parse(std::path::Path::new("stranger.toml"), text).expect("valid");
    let opts = pushpull::driver::RunOptions {
        target: pushpull::driver::Target::Remote {
            public: server.addr,
            control: server.control,
            control_token: None,
            receiver_ip: None,
        },
        progress: false,
        bars: None,
    };
    let stranger = {
        let url = server.url("/events?topics=0&client=0");
        let http = server.http.clone();
        tokio::spawn(async move {
            // Well inside the measured window, whatever the connecting took.
            tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
            http.get(url).send().await.map(|r| r.status())
        })
    };
    let err = pushpull::driver::run(&s, &opts)
        .await
        .expect_err("the counts disagree");
    assert_eq!(stranger.await.unwrap().unwrap(), 200);
    let why = format!("{err:#}");
    assert!(why.contains("client 0 saw") && why.contains("disagree"), "{why}");
}

#[tokio::test]
async fn tcp_counts_what_the_http_layer_counted_and_a_packet_per_poll_each_way() {
    let m = run_one(&pollers("poll")).await;
    assert_all_delivered(&m);
    let t = *m
        .server
        .tcp
        .measured()
        .expect("sock_diag reads loopback sockets on Linux");
    // Every poller holds one keep-alive connection through the window; none closed.
    assert_eq!((t.connections, t.uncounted), (100, 0), "{t:?}");
    // The payload TCP carried is what the server read and wrote at the HTTP layer, up to what
    // moved while the counters were read (a millisecond or two, about 2 of 3,000 polls).
    let http = (m.server.bytes_read + m.server.bytes_written) as f64;
    let tcp = (t.payload_bytes_in + t.payload_bytes_out) as f64;
    assert!((tcp / http - 1.0).abs() < 0.01, "tcp {tcp} http {http}");
    // Each poll is at least a request segment in and an answer segment out; on loopback with
    // TCP_NODELAY no answer needs two.
    let polls = m.server.requests as f64;
    assert!(t.segments_in as f64 >= polls * 0.99, "{t:?} for {polls} polls");
    let out = t.segments_out as f64 / polls;
    assert!((0.99..1.01).contains(&out), "{out} segments out per poll: {t:?}");
    // Headers: at least IPv4 + TCP (40 bytes) per segment, at most IPv6 + TCP + timestamps.
    let per_segment = t.header_bytes as f64 / t.segments() as f64;
    assert!((40.0..=72.0).contains(&per_segment), "{per_segment}");
    // Reading them is the instrument's work, not the server's: the read at the window's start
    // falls inside it, and its CPU is counted and left out of the server's (it cost a few
    // milliseconds a read with a hundred pollers, and was in the server's CPU until counted).
    assert!(m.server.census_cpu_seconds > 0.0, "{:?}", m.server);
}

#[tokio::test]
async fn a_stream_sends_one_segment_per_event() {
    let text = "name = \"wire\"\nseed = 5\nduration = \"2s\"\nwarmup = \"300ms\"\ndrain = \"500ms\"\n\
                modes = [\"sse\"]\n[events]\nrate = 50\ntopics = 5\n[clients]\ncount = 20\n";
    let m = run_delivered(text).await;
    let t = *m.server.tcp.measured().expect("measured");
    // A client's events come about 100 ms apart and each frame is written alone with TCP_NODELAY:
    // one segment out per delivery, give or take those in flight at the window's edges.
    let per = t.segments_out as f64 / m.deliveries.delivered as f64;
    assert!((0.95..1.05).contains(&per), "{per}: {t:?}");
    assert_eq!(t.uncounted, 0);
}

#[tokio::test]
async fn a_mode_that_falls_behind_is_told_apart_from_one_that_keeps_up() {
    // One worker and receivers that answer after 20 ms: 50 deliveries a second at most, for
    // 100 offered. Half the window's events arrive in the drain, and the results say so with
    // the rate it sustained once deliveries flowed, rather than let deliveries per second (all
    // of them over the window) stand alone.
    let m = run_delivered(
        "name = \"behind\"\nseed = 5\nduration = \"2s\"\nwarmup = \"200ms\"\ndrain = \"6s\"\nmodes = [\"webhook\"]\n\
         [events]\nrate = 100\ntopics = 1\npayload_bytes = 64\n[clients]\ncount = 1\n\
         [webhook]\nconcurrency = 1\n\
         [[faults]]\nkind = \"receiver_slow\"\nat = \"0s\"\nfor = \"20s\"\ndelay = \"20ms\"\n",
    )
    .await;
    let warning = m
        .warnings
        .iter()
        .find(|w| w.contains("after the measured window"))
        .unwrap_or_else(|| panic!("{:?}", m.warnings));
    let within = m.deliveries.delivered - m.drain.deliveries;
    assert!(within as f64 / 2.0 < 55.0, "{within} in the window: {warning}");
    let sustained: f64 = warning
        .split("sustained ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no sustained rate in: {warning}"));
    // One worker, 20 ms a delivery: at most 50 a second, a little less for the round trips.
    assert!((35.0..=50.5).contains(&sustained), "{sustained}: {warning}");
    // The window's costs divide by what arrived in it: the measured events' that did and the
    // warm-up's that were still waiting (20 made at 100 a second, 10 or so delivered before
    // the window), not by the 200 the window's events owed, half of them delivered later.
    let in_window = m.server.deliveries_in_window.expect("recorded");
    assert!(
        in_window >= within + 5 && in_window <= within + 20,
        "{in_window} against {within} measured"
    );
    assert!(in_window < m.deliveries.delivered * 3 / 4, "{in_window}");
    let cpu_per_1k = m.server.cpu_seconds / in_window as f64 * 1000.0;
    assert!((m.server.cpu_seconds_per_1k_deliveries - cpu_per_1k).abs() < 1e-12);
    assert!((m.server.requests_per_delivery - m.server.requests as f64 / in_window as f64).abs() < 1e-12);
    // One that keeps up is left alone, though a poller asking every second leaves a sixth of
    // a 3 s window's deliveries to the drain: its theory's mean latency says as much.
    let mut slow_poller = pollers("poll");
    slow_poller.poll.interval = std::time::Duration::from_secs(1);
    slow_poller.drain = std::time::Duration::from_secs(2);
    let kept = run_one(&slow_poller).await;
    assert!(
        kept.drain.deliveries * 10 > kept.deliveries.delivered,
        "{:?}",
        kept.drain
    );
    assert!(
        !kept
            .warnings
            .iter()
            .any(|w| w.contains("after the measured window")),
        "{:?}",
        kept.warnings
    );
}

#[tokio::test]
async fn quiet_streams_heartbeats_are_counted_in_the_window_as_the_model_has_them() {
    // Ten streams with nothing to say (an event a thousand seconds), a heartbeat every 200 ms:
    // by hand each stream beats 10 times in a 2 s window (a period of 200 ms, or a millisecond
    // more where the server's timer rounds it up, and a beat at either edge), so 90 to 110 in
    // all; the model, which beats on the dot, the same. Pollers hold no stream to beat on.
    for mode in ["sse", "websocket"] {
        let text = format!(
            "name = \"quiet\"\nseed = 5\nduration = \"2s\"\nwarmup = \"500ms\"\ndrain = \"300ms\"\n\
             modes = [\"{mode}\"]\n[events]\nrate = 0.001\ntopics = 1\n[clients]\ncount = 10\n\
             [{mode}]\nheartbeat = \"200ms\"\n"
        );
        let s = Scenario::parse(std::path::Path::new("quiet.toml"), &text).expect("valid");
        let measured = run_one(&s).await.server.heartbeats.expect("counted for a stream");
        let model = pushpull::simulate::Model::new(None, pushpull::calibration::Calibration::reference());
        let mode = mode.parse().unwrap();
        let modelled = pushpull::simulate::mode_result(&s, mode, &model, &pushpull::simulate::quietly)
            .server
            .heartbeats
            .expect("modelled for a stream");
        assert!((90..=110).contains(&measured), "{mode}: {measured} measured");
        assert!((90..=110).contains(&modelled), "{mode}: {modelled} modelled");
    }
    let polled = run_one(&pollers("poll")).await;
    assert_eq!(polled.server.heartbeats, None);
}
