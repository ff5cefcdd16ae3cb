//! pushpull measures what each way of telling another system that something happened costs,
//! and how fast the news arrives: short polling, conditional polling, long polling,
//! Server-Sent Events, WebSocket streaming and webhook push, side by side on the same seeded
//! event schedule.
//!
//! # Layout
//!
//! - [`cli`]: the command line (clap derive).
//! - [`scenario`]: scenario files: raw TOML mirror, validated [`scenario::Scenario`], errors
//!   with file:line:column.
//! - [`event`]: events, topics, sequence numbers, cursors: the shared vocabulary.
//! - [`clock`]: CLOCK_MONOTONIC nanoseconds, comparable across the server and driver processes.
//! - [`server`]: the simulated application: event log, generator, control API, stats.
//! - [`modes`]: one file or folder per delivery mode, holding its server route, its client
//!   simulator and its theory.
//! - [`driver`]: runs a scenario: server child process, clients, recorder, stats sampling.
//! - [`api`]: wire types between driver and server that results keep too (the webhook
//!   dispatcher's counters so far).
//! - [`results`]: the versioned `results.json` schema, its histograms, spreads over
//!   repetitions, and `compare`.
//! - [`report`]: what a person reads: the terminal table, charts, theory beside measurement,
//!   verdicts, and the HTML and Markdown reports.
//! - [`procstat`]: a process's CPU and memory, from the kernel.
//! - [`thresholds`]: conditions a run must meet, for CI (exit code 3).
//!
//! # A run
//!
//! ```text
//! scenario.toml ─▶ Scenario ─▶ driver::run
//!                                 │ starts `pushpull serve` on 127.0.0.1:0
//!                                 │ for each mode: reset ─▶ connect clients ─▶ start generator
//!                                 │   ─▶ record deliveries (latency from the scheduled time,
//!                                 │      duplicates, order, gaps) and sample /stats each second
//!                                 │   ─▶ drain within the grace period ─▶ collect
//!                                 ▼
//!                              Results ─▶ results.json, comparison table, charts (SVG, PNG),
//!                                         report.html, report.md
//! ```

pub mod api;
pub mod app;
pub mod cli;
pub mod clock;
pub mod driver;
pub mod event;
pub mod modes;
pub mod procstat;
pub mod recorder;
pub mod report;
pub mod results;
pub mod scenario;
pub mod server;
