//! A property test in state-machine style: random sequences of appends (with
//! every kind of expected version, retries and mixed id sets), reads,
//! subscriptions and restarts, run against the log and against a plain
//! in-memory model; every answer must agree.

use std::time::Duration;

use eventlog::{AppendOutcome, Error, EventId, EventLog, ExpectedVersion, NewEvent};
use proptest::prelude::*;

use crate::support::{close, decoded, open};

const STREAMS: [&str; 3] = ["alpha", "beta", "gamma"];

#[derive(Debug, Clone)]
enum Expect {
    Any,
    NoStream,
    /// The stream's current version, whatever it is: should succeed.
    Current,
    /// A version picked at random: usually wrong.
    Exact(u64),
}

#[derive(Debug, Clone)]
enum Ids {
    /// This many new ids.
    Fresh(usize),
    /// The ids of an earlier batch (index taken modulo the batches so far).
    Retry(usize),
    /// An earlier batch's ids plus one new one.
    Mixed(usize),
}

#[derive(Debug, Clone)]
enum Op {
    Append {
        stream: usize,
        expect: Expect,
        ids: Ids,
    },
    ReadStream {
        stream: usize,
        from: u64,
        limit: usize,
    },
    ReadAll {
        from: u64,
        limit: usize,
    },
    Subscribe {
        from: u64,
    },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let expect = prop_oneof![
        Just(Expect::Any),
        Just(Expect::NoStream),
        Just(Expect::Current),
        (0_u64..6).prop_map(Expect::Exact),
    ];
    let ids = prop_oneof![
        3 => (1_usize..4).prop_map(Ids::Fresh),
        1 => any::<usize>().prop_map(Ids::Retry),
        1 => any::<usize>().prop_map(Ids::Mixed),
    ];
    prop_oneof![
        6 => (0..STREAMS.len(), expect, ids)
            .prop_map(|(stream, expect, ids)| Op::Append { stream, expect, ids }),
        1 => (0..STREAMS.len(), 0_u64..8, 1_usize..5)
            .prop_map(|(stream, from, limit)| Op::ReadStream { stream, from, limit }),
        1 => (0_u64..20, 1_usize..8).prop_map(|(from, limit)| Op::ReadAll { from, limit }),
        1 => (0_u64..20).prop_map(|from| Op::Subscribe { from }),
        1 => Just(Op::Reopen),
    ]
}

/// The reference: the log as a vector, indexes as scans over it.
#[derive(Debug, Default)]
struct Model {
    /// (event id, stream, stream version) by position.
    events: Vec<(EventId, usize, u64)>,
    batches: Vec<Vec<EventId>>,
}

impl Model {
    fn version(&self, stream: usize) -> Option<u64> {
        self.events
            .iter()
            .rev()
            .find(|(_, s, _)| *s == stream)
            .map(|(_, _, version)| *version)
    }

    fn append(
        &mut self,
        stream: usize,
        expected: ExpectedVersion,
        ids: &[EventId],
    ) -> Result<AppendOutcome, &'static str> {
        let placed: Vec<Option<usize>> = ids
            .iter()
            .map(|id| self.events.iter().position(|(known, _, _)| known == id))
            .collect();
        let written = placed.iter().flatten().count();
        if written == ids.len() {
            let first = placed[0].expect("all written");
            let contiguous = placed.iter().enumerate().all(|(offset, position)| {
                *position == Some(first + offset) && self.events[first + offset].1 == stream
            });
            if !contiguous {
                return Err("conflict");
            }
            let count = ids.len() as u64;
            let version = self.events[first].2;
            return Ok(AppendOutcome {
                positions: first as u64..first as u64 + count,
                stream_versions: version..version + count,
                deduplicated: true,
            });
        }
        if written > 0 {
            return Err("conflict");
        }
        let current = self.version(stream);
        let admitted = match expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => current.is_none(),
            ExpectedVersion::Exact(version) => current == Some(version),
        };
        if !admitted {
            return Err("wrong version");
        }
        let first_position = self.events.len() as u64;
        let first_version = current.map_or(0, |version| version + 1);
        for (offset, id) in ids.iter().enumerate() {
            self.events
                .push((*id, stream, first_version + offset as u64));
        }
        self.batches.push(ids.to_vec());
        let count = ids.len() as u64;
        Ok(AppendOutcome {
            positions: first_position..first_position + count,
            stream_versions: first_version..first_version + count,
            deduplicated: false,
        })
    }
}

fn classify(result: Result<AppendOutcome, Error>) -> Result<AppendOutcome, &'static str> {
    result.map_err(|error| match error {
        Error::WrongExpectedVersion { .. } => "wrong version",
        Error::IdempotencyConflict { .. } => "conflict",
        other => panic!("unexpected error {other}"),
    })
}

fn ids_of(events: &[eventlog::RecordedEvent]) -> Vec<EventId> {
    decoded(events)
        .iter()
        .map(|event| EventId::from_slice(&event.event_id).expect("16 bytes"))
        .collect()
}

async fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut log: EventLog = open(dir.path());
    let mut model = Model::default();
    let mut next_id = 0_u128;
    let mut fresh = |count: usize| -> Vec<EventId> {
        (0..count)
            .map(|_| {
                next_id += 1;
                EventId::from_bytes(next_id.to_be_bytes())
            })
            .collect()
    };
    for op in ops {
        match op {
            Op::Append {
                stream,
                expect,
                ids,
            } => {
                let expected = match expect {
                    Expect::Any => ExpectedVersion::Any,
                    Expect::NoStream => ExpectedVersion::NoStream,
                    Expect::Current => model
                        .version(stream)
                        .map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact),
                    Expect::Exact(version) => ExpectedVersion::Exact(version),
                };
                let earlier = |index: usize| {
                    (!model.batches.is_empty())
                        .then(|| model.batches[index % model.batches.len()].clone())
                };
                let ids = match ids {
                    Ids::Fresh(count) => fresh(count),
                    Ids::Retry(index) => earlier(index).unwrap_or_else(|| fresh(1)),
                    Ids::Mixed(index) => {
                        let mut ids = earlier(index).unwrap_or_default();
                        ids.extend(fresh(1));
                        ids
                    }
                };
                let events = ids
                    .iter()
                    .map(|id| NewEvent {
                        event_id: *id,
                        ..NewEvent::new("safeguard.test.v1.Model", id.as_bytes().to_vec())
                    })
                    .collect();
                let actual = classify(log.append(STREAMS[stream], expected, events).await);
                let expected = model.append(stream, expected, &ids);
                assert_eq!(actual, expected, "append {ids:?} to {}", STREAMS[stream]);
            }
            Op::ReadStream {
                stream,
                from,
                limit,
            } => {
                let actual = ids_of(&log.read_stream(STREAMS[stream], from, limit).expect("read"));
                let expected: Vec<EventId> = model
                    .events
                    .iter()
                    .filter(|(_, s, version)| *s == stream && *version >= from)
                    .take(limit)
                    .map(|(id, _, _)| *id)
                    .collect();
                assert_eq!(actual, expected);
            }
            Op::ReadAll { from, limit } => {
                let actual = ids_of(&log.read_all(from, limit).expect("read"));
                let expected: Vec<EventId> = model
                    .events
                    .iter()
                    .skip(from as usize)
                    .take(limit)
                    .map(|(id, _, _)| *id)
                    .collect();
                assert_eq!(actual, expected);
            }
            Op::Subscribe { from } => {
                let mut subscription = log.subscribe(from);
                let expected: Vec<EventId> = model
                    .events
                    .iter()
                    .skip(from as usize)
                    .map(|(id, _, _)| *id)
                    .collect();
                let mut actual = Vec::new();
                for _ in 0..expected.len() {
                    let event = tokio::time::timeout(Duration::from_secs(10), subscription.next())
                        .await
                        .expect("in time")
                        .expect("next");
                    let envelope = event.envelope().expect("decodes");
                    actual.push(EventId::from_slice(&envelope.event_id).expect("16 bytes"));
                }
                assert_eq!(actual, expected);
                assert!(
                    tokio::time::timeout(Duration::from_millis(5), subscription.next())
                        .await
                        .is_err(),
                    "nothing beyond the head"
                );
            }
            Op::Reopen => {
                close(log).await;
                log = open(dir.path());
            }
        }
        assert_eq!(log.head(), model.events.len() as u64);
    }
    assert_eq!(
        log.verify().expect("verify").records,
        model.events.len() as u64
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_log_behaves_like_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(run(ops));
    }
}
