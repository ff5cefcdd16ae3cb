//! pushpull measures what each way of telling another system that something happened costs,
//! and how fast the news arrives: short polling, conditional polling, long polling,
//! Server-Sent Events, WebSocket streaming and webhook push, side by side on the same seeded
//! event schedule.
//!
//! # Layout
//!
//! From the bottom up; each part imports only parts above it in this list, except that
//! [`server`] and [`modes`] use each other (each mode's route runs inside the server), and
//! neither uses the driver or the report (checked by `tests/it/layers.rs`):
//!
//! - [`event`]: events, topics, sequence numbers, cursors and [`event::Mode`]: the vocabulary.
//! - [`clock`]: CLOCK_MONOTONIC nanoseconds, comparable across the server and driver
//!   processes, and the sleeps everything waits with. [`procstat`]: a process's CPU and
//!   memory, and the machine's, from the kernel.
//! - [`scenario`]: scenario files: raw TOML mirror, validation into [`scenario::Scenario`]
//!   (thresholds and sweeps included), errors with file:line:column, and the seeded event
//!   [`scenario::Schedule`].
//! - [`api`]: the wire types between driver and server: reset, start, stop, health, the
//!   server's counters (named once), what the generator emitted, registrations, dead letters.
//! - [`results`]: the versioned `results.json` schema, its histograms, predictions, merges,
//!   spreads over repetitions, and `compare`.
//! - [`recorder`]: what the clients saw: latency histograms and each client's exact ledger.
//! - [`server`]: the simulated application: event log, generator, control API (on its own
//!   listener), stats, counting sockets.
//! - [`modes`]: one file or folder per delivery mode, holding its server route, its client
//!   and its theory.
//! - [`driver`]: runs a scenario: a server child process per mode, clients, sampling,
//!   draining, collection; it speaks to the server through [`api`] only.
//! - [`simulate`]: the same scenario as a discrete-event model (no server, no driver), with
//!   the modes' own client behaviour and theory; [`environment`]: the machine a run was on.
//! - [`report`]: what a person reads: the terminal table, charts, theory beside measurement,
//!   verdicts, thresholds checked, and the HTML and Markdown reports.
//! - [`cli`] parses the command line; [`app`] carries out each command and maps failures to
//!   exit codes (0 ok, 1 run failed, 2 bad input, 3 a threshold failed or `compare` found a
//!   regression past a bound).
//!
//! # A run
//!
//! ```text
//! scenario.toml ─▶ Scenario ─▶ driver::run
//!                                 │ for each mode (and each repetition):
//!                                 │   start a fresh `pushpull serve` on 127.0.0.1:0
//!                                 │   ─▶ reset it (control listener) ─▶ connect clients
//!                                 │   ─▶ start the generator ─▶ record deliveries (latency
//!                                 │      from the scheduled time, duplicates, order, gaps)
//!                                 │      and sample /stats each second
//!                                 │   ─▶ drain within the grace period ─▶ collect ─▶ shut down
//!                                 ▼
//!                              Results ─▶ results.json, comparison table, charts (SVG, PNG),
//!                                         report.html, report.md
//! ```

pub mod api;
pub mod app;
pub mod calibration;
pub mod cli;
pub mod clock;
pub mod driver;
pub mod environment;
pub mod event;
pub mod modes;
pub mod procstat;
pub mod recorder;
pub mod report;
pub mod results;
pub mod scenario;
pub mod server;
pub mod simulate;
