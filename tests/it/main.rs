//! Integration tests: real sockets on 127.0.0.1, port 0; the server runs as the real
//! `pushpull` binary (as a child process) or in-process where a test talks HTTP to it directly.

mod cli;
mod control;
mod delivery;
mod drive;
mod faults;
mod layers;
mod limits;
mod measurement;
mod merge;
mod repeat;
mod report;
mod robustness;
mod scenario_errors;
mod server_api;
mod simulate;
mod thresholds;
mod util;
