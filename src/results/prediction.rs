//! What theory says a mode will do, and what the run gave it to say so: written beside the
//! measurement in the results. The theory itself lives with each mode ([`crate::modes`]).

use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;

/// What a prediction is conditioned on: figures of the run that are inputs to the theory, not
/// outcomes it predicts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Given {
    /// Events per second one client was owed. Before a run, the schedule's mean; after it,
    /// the realized rate (owed deliveries / clients / duration), so that a metric depending on
    /// how many events happened to be drawn is predicted for the events that were.
    pub client_event_rate: f64,
    /// The median round trip of a small request between the idle driver and server, ms,
    /// measured before the mode ran (0 when not measured). A pushed event's path has the same
    /// two wake-ups (the server's worker, then the client's), so this is what one delivery
    /// costs when nothing queues; a poll's answer costs half of it.
    pub round_trip_ms: f64,
    /// The generator's median lateness (emitted − scheduled) in the run, ms.
    pub generator_ms: f64,
    /// True when the round trip was the simulator's input rather than a measurement.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub round_trip_modelled: bool,
}

impl Given {
    /// What the scenario alone says: its mean event rate, no measured trip or lateness.
    pub fn from_scenario(s: &Scenario) -> Given {
        Given {
            client_event_rate: s.client_event_rate(),
            round_trip_ms: 0.0,
            generator_ms: 0.0,
            round_trip_modelled: false,
        }
    }

    /// Where the round trip came from, as the theory's words say it: "measured", or "given"
    /// (to the model).
    pub fn round_trip_was(&self) -> &'static str {
        if self.round_trip_modelled {
            "given"
        } else {
            "measured"
        }
    }

    /// The time a pushed event takes when nothing queues: the generator's lateness plus its
    /// path ([`Given::push_path_ms`]), ms.
    pub fn push_ms(&self) -> f64 {
        self.generator_ms + self.push_path_ms()
    }

    /// A pushed event's path when nothing queues, ms. A round trip measured between idle
    /// processes on one machine is nearly all processing: the server's worker wakes and writes,
    /// then the client wakes, the same two wake-ups a pushed event has, so a push costs all of
    /// it. A round trip given to the model is propagation, there and back, and a pushed event
    /// goes one way (the model charges the processing as CPU time of its own).
    pub fn push_path_ms(&self) -> f64 {
        if self.round_trip_modelled {
            self.round_trip_ms / 2.0
        } else {
            self.round_trip_ms
        }
    }

    /// [`Given::push_path_ms`] in the theory's words, with its numbers.
    pub fn push_path_words(&self) -> String {
        if self.round_trip_modelled {
            format!(
                "one way over the given network ({:.3} ms, half its {:.3} ms round trip)",
                self.push_path_ms(),
                self.round_trip_ms
            )
        } else {
            format!(
                "the path of one small round trip between idle processes ({:.3} ms measured: the server's \
                 worker wakes and writes, then the client wakes, as for a pushed event)",
                self.round_trip_ms
            )
        }
    }
}

/// What theory says a mode will cost and how fast it will deliver; written next to the
/// measurement in the results, so reports can compare the two.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Expected median latency, ms, from the schedule (the generator's lateness and the
    /// measured trip included).
    pub latency_p50_ms: f64,
    /// Expected mean latency, ms.
    pub latency_mean_ms: f64,
    /// Expected requests per second the server handles.
    pub requests_per_second: f64,
    /// Expected requests per delivered event: infinite for a client owed no events (written
    /// as `null`).
    #[serde(with = "super::finite_or_null")]
    pub requests_per_delivery: f64,
    /// Expected share of responses that carry no event.
    pub empty_share: f64,
    /// Expected connections held open at once.
    pub connections: f64,
    /// The reasoning, in plain words with the numbers filled in.
    pub explanation: String,
    /// What the prediction was conditioned on (zeros in older results).
    #[serde(default)]
    pub given: Given,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_owed_nothing_predicts_infinite_requests_per_delivery_and_reads_back() {
        // Pollers owed no event in the window (a realized rate of 0) make requests for no
        // delivery: JSON has no infinity, so it is written as null, and a results.json
        // holding it must read back (it did not, and `report` refused the run's own file).
        let p = Prediction {
            latency_p50_ms: 500.0,
            latency_mean_ms: 500.0,
            requests_per_second: 1.0,
            requests_per_delivery: f64::INFINITY,
            empty_share: 1.0,
            connections: 1.0,
            explanation: String::new(),
            given: Given::default(),
        };
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains("\"requests_per_delivery\":null"), "{json}");
        let back: Prediction = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        let finite = Prediction {
            requests_per_delivery: 2.5,
            ..p
        };
        let back: Prediction = serde_json::from_str(&serde_json::to_string(&finite).unwrap()).unwrap();
        assert_eq!(back.requests_per_delivery, 2.5);
    }
}
