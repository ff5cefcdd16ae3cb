//! Criterion benchmarks of the simulator: its queue of pending actions against a binary heap
//! (the "hold" pattern: pop the earliest, push it again a poll interval later, with a
//! million pending), the queue when a crowd due at one moment is pushed again into the
//! moment it is drained from (refused long polls coming back together), and polls simulated
//! per second of wall time for 10,000 pollers over a minute of simulated time.

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use std::path::Path;
use std::time::Duration;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use pushpull::calibration::Calibration;
use pushpull::scenario::Scenario;
use pushpull::simulate::queue::Queue;
use pushpull::simulate::server::Server;
use pushpull::simulate::{poll, quietly, Network, Wire};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A million clients' next actions, spread over a 5 s interval.
const PENDING: u32 = 1_000_000;
const INTERVAL_NS: u64 = 5_000_000_000;
const HOLDS: u64 = 1_000_000;

fn queues(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue_hold_1M_pending");
    g.throughput(Throughput::Elements(HOLDS));
    g.sample_size(10);
    let starts = || {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        (0..PENDING)
            .map(move |c| (rng.gen_range(0..INTERVAL_NS), c))
            .collect::<Vec<_>>()
    };
    g.bench_function("calendar_queue", |b| {
        b.iter_batched(
            || {
                let mut q = Queue::with_capacity(PENDING as usize);
                for (at, c) in starts() {
                    q.push(at, c);
                }
                (q, ChaCha8Rng::seed_from_u64(2))
            },
            |(mut q, mut rng)| {
                for _ in 0..HOLDS {
                    let (at, c) = q.pop().expect("pending");
                    q.push(at + INTERVAL_NS + rng.gen_range(0..INTERVAL_NS / 10), c);
                }
                q
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("binary_heap", |b| {
        b.iter_batched(
            || {
                let heap: BinaryHeap<Reverse<(u64, u64, u32)>> = starts()
                    .into_iter()
                    .enumerate()
                    .map(|(i, (at, c))| Reverse((at, i as u64, c)))
                    .collect();
                (heap, ChaCha8Rng::seed_from_u64(2))
            },
            |(mut heap, mut rng)| {
                for i in 0..HOLDS {
                    let Reverse((at, _, c)) = heap.pop().expect("pending");
                    let next = at + INTERVAL_NS + rng.gen_range(0..INTERVAL_NS / 10);
                    heap.push(Reverse((next, u64::from(PENDING) + i, c)));
                }
                heap
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn pollers(c: &mut Criterion) {
    let s = Scenario::parse(
        Path::new("bench.toml"),
        "name = \"bench\"\nduration = \"60s\"\nwarmup = \"0s\"\ndrain = \"1s\"\nmodes = [\"poll\"]\n\
         [events]\nrate = 1000\ntopics = 1000\n[clients]\ncount = 10000\n[poll]\ninterval = \"1s\"\n",
    )
    .expect("valid");
    // The server's two cores at the shipped calibration's costs (the queue of each poll's
    // answer is part of the work), over a network with jitter and the messages' bytes.
    let calibration = Calibration::reference();
    let net = Network {
        jitter: Duration::from_micros(100),
        ..Network::of(Duration::from_micros(200))
    };
    let bytes = calibration
        .bytes(pushpull::event::Mode::Poll)
        .expect("calibrated");
    let model = || (Server::new(&s, &calibration, 2), Wire::new(&net, bytes, 1));
    let (mut srv, mut wire) = model();
    let polls = poll::run(&s, false, &mut wire, &mut srv, &quietly).actions;
    let mut g = c.benchmark_group("simulate");
    g.throughput(Throughput::Elements(polls));
    g.sample_size(10);
    g.bench_function("poll_10k_clients_60s", |b| {
        b.iter_batched(
            model,
            |(mut srv, mut wire)| poll::run(&s, false, &mut wire, &mut srv, &quietly),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// A crowd of actions due within one slice of the wheel, each pushed again a few ns after it
/// is popped, so into the slice being drained.
const CROWD: u32 = 50_000;

fn crowd(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue_crowd_50k_in_one_slice");
    g.throughput(Throughput::Elements(u64::from(CROWD)));
    g.sample_size(10);
    g.bench_function("calendar_queue", |b| {
        b.iter_batched(
            || {
                let mut q = Queue::with_capacity(CROWD as usize);
                for c in 0..CROWD {
                    q.push(u64::from(c % 1000), c);
                }
                q
            },
            |mut q| {
                for _ in 0..CROWD {
                    let (at, c) = q.pop().expect("pending");
                    q.push(at + 5, c);
                }
                q
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, queues, crowd, pollers);
criterion_main!(benches);
