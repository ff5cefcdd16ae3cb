//! One mode's clients: started (pollers, long pollers and streams as tasks; webhook receivers
//! with their endpoints registered), waited for until every held connection is up, and
//! stopped, handing back their ledgers and what the server counted handing each.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::{stream, StreamExt, TryStreamExt};
use rand::SeedableRng;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::child::Control;
use super::Endpoints;
use crate::api::{Register, StatsSnapshot};
use crate::event::{Seq, TopicId};
use crate::modes::webhook::receiver::{ReceiverClient, Receivers};
use crate::modes::webhook::signature::Secret;
use crate::modes::{self, ClientCtx, Mode};
use crate::recorder::{Ledger, Recorder};
use crate::scenario::{FaultPlan, Scenario};

/// The clients of one mode while they run.
pub(super) enum Clients {
    Tasks(Vec<JoinHandle<Ledger>>),
    /// Receivers, and each client's subscription id.
    Webhook(Receivers, Vec<String>),
}

/// Starts `mode`'s clients and, for the modes that hold a connection, waits until every one
/// is attached.
pub(super) async fn start_clients(
    endpoints: &Endpoints,
    s: &Arc<Scenario>,
    mode: Mode,
    plan: &FaultPlan,
    recorder: &Arc<Recorder>,
    stop: &CancellationToken,
) -> anyhow::Result<Clients> {
    let control = &endpoints.control;
    let ledger = |c: u32| Ledger::new(c, s.client_topics(c), recorder.clone());
    if mode == Mode::Webhook {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(s.seed);
        let signing = s.webhook.signing;
        let secrets: Vec<Option<(String, Secret)>> = (0..s.clients.count)
            .map(|_| signing.then(|| Secret::generate(&mut rng)))
            .collect();
        let clients = (0..s.clients.count)
            .zip(&secrets)
            .map(|(c, sec)| ReceiverClient {
                ledger: ledger(c),
                secret: sec.as_ref().map(|(_, k)| k.clone()),
                faults: plan.for_client(c, mode),
            })
            .collect();
        let receivers = Receivers::start(
            endpoints.receiver_ip,
            s.webhook.receiver_hosts,
            clients,
            s.webhook.receiver_fail_attempts,
        )
        .await?;
        let ids = stream::iter(0..s.clients.count)
            .map(|c| {
                let req = Register {
                    url: receivers.url(c),
                    topics: s.client_topics(c),
                    secret: secrets[c as usize].as_ref().map(|(t, _)| t.clone()),
                };
                async move { control.register(&req).await.map(|r| r.id) }
            })
            .buffered(32)
            .try_collect::<Vec<_>>()
            .await
            .context("registering webhook endpoints")?;
        return Ok(Clients::Webhook(receivers, ids));
    }
    let handles = (0..s.clients.count)
        .map(|c| {
            let faults = plan.for_client(c, mode);
            let ctx = ClientCtx::new(c, endpoints.public, s.clone(), ledger(c), stop.clone(), faults);
            tokio::spawn(modes::run_client(mode, ctx))
        })
        .collect();
    // Clients that hold a connection (streams, long polls) are all waited for (as many as
    // the server's `max_connections` lets in): an event published while thousands of them
    // are still connecting would be charged the connection storm as latency. Pollers need no
    // wait: they ask on their own schedule.
    let attached = |st: &StatsSnapshot| match mode {
        Mode::Sse | Mode::Websocket => Some(st.counters.stream_subscribers),
        Mode::LongPoll => Some(st.counters.held_long_polls),
        _ => None,
    };
    let admitted = u64::from(s.clients.count).min(s.server.max_connections.unwrap_or(u64::MAX));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = control.stats().await?;
        let Some(n) = attached(&st) else { break };
        if n >= admitted {
            break;
        }
        if Instant::now() >= deadline {
            let refused = st.counters.connections_refused;
            anyhow::bail!(
                "only {n} of {} {mode} clients connected within 30 s{}",
                s.clients.count,
                if refused > 0 {
                    format!(
                        "; the server answered {refused} connections 503 because it held its most \
                         (`serve --max-connections`, by default its open-file limit less what it \
                         keeps): run fewer clients, or give the server more"
                    )
                } else {
                    String::new()
                }
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Clients::Tasks(handles))
}

/// The dead letter set as `(client, topic, seq)`.
pub(super) type DeadSet = HashSet<(u32, TopicId, Seq)>;

/// Stops the clients and takes their ledgers, with what the server counted handing each of
/// them; for webhooks, also which deliveries sit in the dead-letter list.
///
/// The server counts what it hands a client before the answer leaves, and a client records
/// it once the answer is in, so each count is read on the side that can only be ahead: the
/// server's after every client has stopped (a poll under way when the run stopped is still
/// answered, counted and recorded: read before, the server's count missed it), the webhook
/// receivers' after the server's (a 2xx under way when they stop is recorded by the receiver
/// first).
pub(super) async fn finish_clients(
    clients: Clients,
    control: &Control,
) -> anyhow::Result<(Vec<Ledger>, Vec<u64>, DeadSet)> {
    let mut dead = DeadSet::new();
    match clients {
        Clients::Webhook(receivers, ids) => {
            let handed = control.handed().await?;
            let by_id: HashMap<&str, u32> = ids
                .iter()
                .enumerate()
                .map(|(c, id)| (id.as_str(), c as u32))
                .collect();
            for letter in control.dead_letters().await? {
                let client = by_id.get(letter.subscription.as_str()).with_context(|| {
                    format!("a dead letter names an unknown endpoint {}", letter.subscription)
                })?;
                dead.insert((*client, letter.topic, letter.seq));
            }
            let by_client = ids
                .iter()
                .map(|id| handed.by_subscription.get(id).copied().unwrap_or(0))
                .collect();
            Ok((receivers.finish().await, by_client, dead))
        }
        Clients::Tasks(handles) => {
            let mut ledgers = Vec::with_capacity(handles.len());
            for h in handles {
                ledgers.push(
                    tokio::time::timeout(Duration::from_secs(10), h)
                        .await
                        .context("a client did not stop")??,
                );
            }
            Ok((ledgers, control.handed().await?.by_client, dead))
        }
    }
}
