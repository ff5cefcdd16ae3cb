//! Criterion benchmark of the simulator's event loop: polls simulated per second of wall
//! time, for 10,000 pollers over a minute of simulated time.

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pushpull::scenario::Scenario;
use pushpull::simulate::{poll, Network};

fn pollers(c: &mut Criterion) {
    let s = Scenario::parse(
        Path::new("bench.toml"),
        "name = \"bench\"\nduration = \"60s\"\nwarmup = \"0s\"\ndrain = \"1s\"\nmodes = [\"poll\"]\n\
         [events]\nrate = 1000\ntopics = 1000\n[clients]\ncount = 10000\n[poll]\ninterval = \"1s\"\n",
    )
    .expect("valid");
    let net = Network {
        round_trip: Duration::from_micros(200),
    };
    let polls = poll::run(&s, false, net).actions;
    let mut g = c.benchmark_group("simulate");
    g.throughput(Throughput::Elements(polls));
    g.sample_size(10);
    g.bench_function("poll_10k_clients_60s", |b| b.iter(|| poll::run(&s, false, net)));
    g.finish();
}

criterion_group!(benches, pollers);
criterion_main!(benches);
