//! The command line, parsed by clap into typed values: `run`, `drive`, `simulate`, `serve`,
//! `validate`, `report` and `compare`. What each does is in [`crate::app`].

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::event::Mode;
use crate::scenario::humane;

/// `--modes`: one mode's name.
fn mode(s: &str) -> Result<Mode, String> {
    s.trim().parse::<Mode>().map_err(|e| {
        let names = Mode::ALL.map(|m| m.name()).join(", ");
        format!("{e} (modes: {names})")
    })
}

/// `--duration`: a humane duration above zero, as `10s` or `2m`.
fn duration(s: &str) -> Result<Duration, String> {
    match humane::parse(s)? {
        d if d.is_zero() => Err("must be more than 0s".into()),
        d => Ok(d),
    }
}

/// `--target`, `--control`: `http://ADDRESS:PORT`.
fn http_address(s: &str) -> Result<SocketAddr, String> {
    let addr = s.strip_prefix("http://").unwrap_or(s).trim_end_matches('/');
    addr.parse::<SocketAddr>()
        .map_err(|_| format!("expected http://ADDRESS:PORT, found {s:?}"))
}

/// Compare the ways one system can tell another that something happened: short polling,
/// conditional polling, long polling, Server-Sent Events, WebSocket and webhooks, measured
/// side by side on the same seeded event schedule.
#[derive(Debug, Parser)]
#[command(
    name = "pushpull",
    version,
    after_help = "Examples:\n  \
    pushpull run scenarios/quickstart.toml                 every mode, under a minute\n  \
    pushpull run scenarios/chat.toml --modes poll,webhook  two modes of a chat app\n  \
    pushpull validate my-api.toml                          check a file, see every default\n\n\
    Scenario format: docs/scenarios.md. Exit codes: 0 ok, 1 run failed, 2 bad input, 3 a threshold failed or `compare` found a \
    regression beyond a --fail-on bound."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// What `run` and `drive` share.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Folder for results.json and the report [default: reports/NAME/, NAME being the scenario's name].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run only these modes, in this order (comma-separated: poll, conditional_poll,
    /// long_poll, sse, websocket, webhook).
    #[arg(long, value_delimiter = ',', value_parser = mode)]
    pub modes: Option<Vec<Mode>>,
    /// Override the scenario's measured duration, e.g. 10s or 2m.
    #[arg(long, value_parser = duration)]
    pub duration: Option<Duration>,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run each mode N times (1–100), rotating the order of the modes every round; the
    /// results keep every repetition and each figure's median and spread [default: the
    /// scenario's `repeat`, else 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: Option<u32>,
    /// No progress bars and no table; only errors.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print results.json to standard output instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario: start the event server, run every mode in turn, print a comparison
    /// table and write results.json, charts, report.html and report.md.
    ///
    /// Each mode gets the same seeded event schedule. Latency is measured from each event's
    /// scheduled time; delivery counts are exact; server cost is read from the server process.
    Run {
        /// The scenario file (TOML), e.g. scenarios/quickstart.toml.
        scenario: PathBuf,
        /// Where to write and what to show.
        #[command(flatten)]
        args: RunArgs,
    },
    /// Run a scenario's clients against an already running `pushpull serve`, possibly on
    /// another host.
    ///
    /// Latency then spans two clocks: the driver estimates the offset between the server's
    /// monotonic clock and its own from /healthz round trips before each mode (keeping the
    /// fastest of several) and records it, with its uncertainty, in the results. Modes share
    /// the one server, so memory per client is only exact for the first mode run.
    Drive {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// The server's client address, e.g. http://10.0.0.5:8080.
        #[arg(long, value_parser = http_address)]
        target: SocketAddr,
        /// The server's control address, the second one `pushpull serve` prints.
        #[arg(long, value_parser = http_address)]
        control: SocketAddr,
        /// The control API's token, printed by `pushpull serve` when its control address is
        /// not a loopback one.
        #[arg(
            long,
            value_name = "TOKEN",
            env = "PUSHPULL_CONTROL_TOKEN",
            hide_env_values = true
        )]
        control_token: Option<String>,
        /// Address the webhook receivers listen on; the server must be able to reach it and
        /// allow it (`pushpull serve --allow`). [default: 127.0.0.x loopback addresses, which
        /// only a server on this host can reach]
        #[arg(long)]
        receiver_ip: Option<IpAddr>,
        /// Where to write and what to show.
        #[command(flatten)]
        args: RunArgs,
    },
    /// Simulate a scenario instead of measuring it: the same scenario file, results.json and
    /// reports, every page and chart marked simulated.
    ///
    /// A discrete-event model plays the scenario's seeded events and its clients (pollers on
    /// their slots, long polls, streams, the webhook dispatcher with its concurrency and
    /// retries) over a network of the given round trip, against a server whose cores serve
    /// each operation at the CPU it costs (from `pushpull calibrate`), with a million clients
    /// if asked; a sweep's points run in parallel. TCP segments are charged at the
    /// calibration's segments per request, event and connection opened, as its loopback runs
    /// cut them (not a network's smaller segments).
    Simulate {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// The network's round trip between clients and server, e.g. 40ms across a continent
        /// (the server's time comes on top) [default: the scenario's `[network] round_trip`,
        /// else loopback's 0.2ms].
        #[arg(long, value_parser = duration)]
        round_trip: Option<Duration>,
        /// The server's costs, from `pushpull calibrate` [default: the calibration measured on
        /// the reference machine, shipped with pushpull].
        #[arg(long, value_name = "FILE")]
        calibration: Option<PathBuf>,
        /// Model the clients on the server's machine, as `run` has them: what each client
        /// spends on an answer or an event (the calibration's fit of the driver's CPU), and the
        /// handoff of each delivery to its reader (fitted on the calibration runs' latency, per
        /// client held), hold the server's cores too, so a fan-out waits for its readers as well
        /// as its writes. For holding the model against `run`; clients of a real service are
        /// elsewhere.
        #[arg(long)]
        clients_beside_server: bool,
        /// Where to write and what to show.
        #[command(flatten)]
        args: RunArgs,
    },
    /// Measure this machine's server costs for `simulate`: short runs of every mode, then of
    /// the webhook sender's memory, of the pollers' pages, of webhook receivers that fail and
    /// of long polls and webhooks over a 40 ms round trip (about eleven minutes), then the CPU of
    /// each operation fitted from their counts (an empty poll, a page and each event in it, a
    /// 304, a long poll, an event written to a stream, a signed webhook attempt and a retry, a
    /// connection, an event published, a second running, a wake-up, and one for a reply from
    /// afar), the memory a connection holds per mode (and a webhook endpoint and attempt a
    /// second, a byte of a poller's page) and the bytes per request and per delivery.
    Calibrate(CalibrateArgs),
    /// Render the charts, report.html and report.md again from a results.json, without
    /// running anything; given several results of one scenario, merge them first; given a
    /// measured and a simulated one, lay them side by side (validation.html, validation.md,
    /// validation.json).
    ///
    /// A merge adds the latency histograms (so its percentiles are those of all deliveries
    /// together), sums the counts, recomputes rates and shares, and keeps each run's time series.
    Report {
        /// Results files written by `pushpull run`.
        #[arg(required = true)]
        results: Vec<PathBuf>,
        /// Folder for the report [default: the results file's folder; required for a merge].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Compare new results against a base of the same scenario: for every mode and headline
    /// figure, the change and whether it lies beyond the noise of both runs ("improved",
    /// "regressed", "within noise"; runs need `--repeat` for a spread to judge by).
    ///
    /// Exit code 3 when a `--fail-on` bound is broken, so a CI job can gate on a baseline.
    Compare {
        /// The baseline's results.json.
        base: PathBuf,
        /// The new results.json.
        new: PathBuf,
        /// Also write compare.html and compare.md into this folder.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Fail (exit 3) when FIGURE regressed beyond noise by more than BOUND: a share of the
        /// base (`latency.p99>10%`) or an amount in the figure's unit (`latency.p50>2`, ms).
        /// Repeatable. Figures: latency.p50, latency.p99, requests_per_event, empty_share,
        /// bytes_per_event, packets_per_event, cpu_ms_per_1k, memory_per_client,
        /// deliveries_per_second, requests_per_second, heartbeats_per_second.
        #[arg(long = "fail-on", value_name = "FIGURE>BOUND")]
        fail_on: Vec<crate::results::compare::FailOn>,
    },
    /// Check a scenario file and print it with every default filled in.
    Validate {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Print the resolved scenario as JSON instead of TOML.
        #[arg(long)]
        json: bool,
    },
    /// Run the event server alone; prints the addresses it listens on.
    ///
    /// Clients use the first address. The second, the control address, serves the control
    /// API (reset, start, stop, shutdown, stats) and the modes' routes uncounted, for the
    /// driver's own calls; bound beyond loopback it asks for a token.
    Serve(ServeArgs),
}

/// What `calibrate` takes.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Where to write the calibration, for `simulate --calibration FILE`.
    #[arg(long, default_value = "calibration.json")]
    pub out: PathBuf,
    /// Fit from the results.json of calibration runs measured before (kept with `--runs`),
    /// instead of measuring; given more than once, from all their runs together (the same
    /// runs measured again on one machine tell its costs apart better).
    #[arg(long, value_name = "RESULTS")]
    pub from: Vec<PathBuf>,
    /// Also keep the measured runs in this folder (results.json and their report; the runs
    /// for memory alone in its memory/ and pages/ folders, the failing receivers' in
    /// failures/, those over a round trip in round-trip/).
    #[arg(long, value_name = "DIR")]
    pub runs: Option<PathBuf>,
    /// Measure each run for this long instead of 4s (and the many clients held nearly idle
    /// three times as long, as they are at 4s).
    #[arg(long, value_parser = duration)]
    pub duration: Option<Duration>,
    /// No progress bars and no table; only errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// What `serve` takes.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address for clients (loopback by default; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Address for the driver's control calls, which are left out of the server's stats.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub control: SocketAddr,
    /// Token the control API asks for (`Authorization: Bearer TOKEN`); when the control
    /// address is not a loopback one and none is given, one is generated and printed.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "PUSHPULL_CONTROL_TOKEN",
        hide_env_values = true
    )]
    pub control_token: Option<String>,
    /// Also accept webhook targets in this range (an address or CIDR such as 10.0.0.0/8;
    /// repeatable). Loopback is always accepted; nothing else is by default.
    #[arg(long = "allow")]
    pub allow: Vec<String>,
    /// Most long polls held at once; more are answered 503 with Retry-After.
    #[arg(long, default_value_t = crate::scenario::DEFAULT_MAX_HELD_LONG_POLLS)]
    pub max_held_long_polls: u64,
    /// Most webhook subscriptions one run holds; more are refused with 409.
    #[arg(long, default_value_t = crate::scenario::DEFAULT_MAX_SUBSCRIPTIONS)]
    pub max_subscriptions: u64,
    /// Most streams and held long polls one client (`?client=`) has open at once; more are
    /// answered 429 with Retry-After.
    #[arg(long, default_value_t = 4)]
    pub max_streams_per_client: u32,
    /// Most client connections held at once; more are answered 503 with Retry-After and
    /// closed. Default: the open-file limit less 128 descriptors for the server's own files
    /// and connections.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,
}
