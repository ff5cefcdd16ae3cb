//! The event log: one ordered log per topic with monotonic sequence numbers, bounded retention
//! (by count and by age), and a wake-up signal per topic for requests waiting on new events.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use crate::event::{Event, Seq, TopicId};
use crate::scenario::Retention;

/// All topics' logs.
pub struct EventLog {
    topics: Vec<TopicLog>,
    max_count: usize,
    max_age_ns: u64,
}

struct TopicLog {
    inner: RwLock<TopicInner>,
    /// The last seq appended; waiters subscribe to learn of new events.
    head: watch::Sender<Seq>,
}

struct TopicInner {
    events: VecDeque<Arc<Event>>,
    /// Seq the next appended event gets.
    next_seq: Seq,
}

/// The block the global allocator (mimalloc) gives a request of `bytes`: a word, then an even
/// number of words up to eight, then four sizes to each doubling (at most 25% over the
/// request), and past 128 KiB whole 4 KiB pages.
pub fn heap_block(bytes: usize) -> u64 {
    const WORD: u64 = 8;
    let w = (bytes as u64).div_ceil(WORD).max(1);
    let words = match w {
        1 => 1,
        2..=8 => (w + 1) & !1,
        _ if w * WORD > 128 << 10 => return (w * WORD).next_multiple_of(4096),
        _ => {
            let v = w - 1;
            let b = u64::from(63 - v.leading_zeros());
            (5 + ((v >> (b - 2)) & 3)) << (b - 2)
        }
    };
    words * WORD
}

/// A cursor older than the log's window: events after it and before `earliest` are gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone {
    /// The first seq the log still holds (or will hold next, if it holds none).
    pub earliest: Seq,
}

impl EventLog {
    /// An empty log of `topics` topics.
    pub fn new(topics: u32, retention: &Retention) -> Self {
        EventLog {
            topics: (0..topics)
                .map(|_| TopicLog {
                    inner: RwLock::new(TopicInner {
                        events: VecDeque::new(),
                        next_seq: 1,
                    }),
                    head: watch::Sender::new(0),
                })
                .collect(),
            max_count: retention.count,
            max_age_ns: retention.age.as_nanos().min(u64::MAX as u128) as u64,
        }
    }

    /// Number of topics.
    pub fn topic_count(&self) -> u32 {
        self.topics.len() as u32
    }

    /// Appends the event `make(seq)` builds with the topic's next seq, evicts what retention no
    /// longer allows, and wakes the topic's waiters.
    pub fn append(&self, topic: TopicId, make: impl FnOnce(Seq) -> Event) -> Arc<Event> {
        let log = &self.topics[topic as usize];
        let event = {
            let mut inner = log.inner.write().expect("log lock");
            let event = Arc::new(make(inner.next_seq));
            inner.next_seq += 1;
            let now = event.emitted_ns;
            inner.events.push_back(event.clone());
            while inner.events.len() > self.max_count
                || inner
                    .events
                    .front()
                    .is_some_and(|e| now.saturating_sub(e.emitted_ns) > self.max_age_ns)
            {
                inner.events.pop_front();
            }
            event
        };
        log.head.send_replace(event.seq);
        event
    }

    /// Up to `limit` events of `topic` after seq `after`, and whether more follow; `Gone` when
    /// events after the cursor have already been evicted.
    pub fn read_after(
        &self,
        topic: TopicId,
        after: Seq,
        limit: usize,
    ) -> Result<(Vec<Arc<Event>>, bool), Gone> {
        let inner = self.topics[topic as usize].inner.read().expect("log lock");
        let earliest = inner.events.front().map_or(inner.next_seq, |e| e.seq);
        if after + 1 < earliest {
            return Err(Gone { earliest });
        }
        let skip = (after + 1 - earliest) as usize;
        let available = inner.events.len().saturating_sub(skip);
        let events = inner.events.iter().skip(skip).take(limit).cloned().collect();
        Ok((events, available > limit))
    }

    /// True when `topic` holds an event after `after` (or the cursor has expired), without
    /// copying anything: what a conditional poll needs to answer 304.
    pub fn has_news(&self, topic: TopicId, after: Seq) -> bool {
        let inner = self.topics[topic as usize].inner.read().expect("log lock");
        inner.next_seq > after + 1
    }

    /// Bytes the retained events take from the allocator (their JSON, their records and the
    /// queues' slots), so that memory measured per client can leave the shared log out.
    pub fn retained_bytes(&self) -> u64 {
        // Each event is two allocations, the shared event (its two counts and the struct) and
        // its text; each topic's queue holds a pointer per slot it has room for.
        let shared = heap_block(2 * std::mem::size_of::<usize>() + std::mem::size_of::<Event>());
        let slot = std::mem::size_of::<Arc<Event>>();
        self.topics
            .iter()
            .map(|t| {
                let inner = t.inner.read().expect("log lock");
                let events: u64 = inner
                    .events
                    .iter()
                    .map(|e| shared + heap_block(e.json.len()))
                    .sum();
                let slots = inner.events.capacity();
                events + if slots > 0 { heap_block(slot * slots) } else { 0 }
            })
            .sum()
    }

    /// The last seq appended to `topic` (0 before the first).
    pub fn head(&self, topic: TopicId) -> Seq {
        *self.topics[topic as usize].head.borrow()
    }

    /// A receiver that changes whenever `topic` gets an event.
    pub fn watch(&self, topic: TopicId) -> watch::Receiver<Seq> {
        self.topics[topic as usize].head.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::WireEvent;
    use std::time::Duration;

    fn event(topic: TopicId, seq: Seq, at: u64) -> Event {
        Event::new(
            WireEvent {
                id: seq,
                topic,
                seq,
                scheduled_ns: at,
                emitted_ns: at,
                measured: true,
            },
            4,
        )
    }

    fn log(count: usize, age: Duration) -> EventLog {
        EventLog::new(2, &Retention { count, age })
    }

    #[test]
    fn reads_after_a_cursor_in_pages() {
        let log = log(100, Duration::from_secs(60));
        for _ in 0..5 {
            log.append(0, |s| event(0, s, 0));
        }
        let (page, more) = log.read_after(0, 1, 2).unwrap();
        assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3]);
        assert!(more);
        let (page, more) = log.read_after(0, 3, 10).unwrap();
        assert_eq!(page.len(), 2);
        assert!(!more);
        assert!(log.read_after(0, 5, 10).unwrap().0.is_empty());
        assert!(log.read_after(1, 0, 10).unwrap().0.is_empty());
        assert_eq!(log.head(0), 5);
        assert!(log.has_news(0, 4) && !log.has_news(0, 5));
    }

    #[test]
    fn count_retention_makes_old_cursors_gone() {
        let log = log(3, Duration::from_secs(60));
        for _ in 0..10 {
            log.append(0, |s| event(0, s, 0));
        }
        assert_eq!(log.read_after(0, 2, 10).unwrap_err(), Gone { earliest: 8 });
        assert_eq!(log.read_after(0, 7, 10).unwrap().0.len(), 3);
    }

    #[test]
    fn age_retention_evicts_old_events() {
        let log = log(100, Duration::from_nanos(1_000));
        log.append(0, |s| event(0, s, 0));
        log.append(0, |s| event(0, s, 500));
        log.append(0, |s| event(0, s, 5_000));
        assert_eq!(log.read_after(0, 0, 10).unwrap_err(), Gone { earliest: 3 });
    }

    #[test]
    fn blocks_are_mimallocs_size_classes() {
        // mimalloc's bins, in words: 1, 2, 4, 6, 8, then 10, 12, 14, 16, 20, 24, 28, 32, 40,
        // … (four to each doubling); past 128 KiB, pages.
        let cases = [
            (0, 8),
            (8, 8),
            (9, 16),
            (17, 32),
            (64, 64),
            (65, 80),
            (129, 160),
            (642, 768),
            (4226, 5120),
            (128 << 10, 128 << 10),
            ((128 << 10) + 1, (128 << 10) + 4096),
        ];
        for (bytes, block) in cases {
            assert_eq!(heap_block(bytes), block, "{bytes} bytes");
        }
    }

    #[test]
    fn retained_bytes_are_each_events_two_blocks_and_the_queues_slots() {
        let log = log(100, Duration::from_secs(60));
        assert_eq!(log.retained_bytes(), 0);
        for _ in 0..3 {
            log.append(0, |s| event(0, s, 0));
        }
        // Seqs 1 to 3 have texts of one length.
        let text = event(0, 1, 0).json.len();
        // The shared event: two counts of 8 bytes and the struct; its text, allocated at its
        // length; topic 0's queue, room for 4 pointers (its first growth); topic 1 holds none.
        let shared = heap_block(16 + std::mem::size_of::<Event>());
        let queue = heap_block(8 * log.topics[0].inner.read().unwrap().events.capacity());
        assert_eq!(log.retained_bytes(), 3 * (shared + heap_block(text)) + queue);
    }

    #[tokio::test]
    async fn append_wakes_watchers() {
        let log = log(100, Duration::from_secs(60));
        let mut rx = log.watch(1);
        log.append(1, |s| event(1, s, 0));
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow(), 1);
    }
}
