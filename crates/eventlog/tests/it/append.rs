//! Appending: versions, expected-version checks, idempotency, atomicity,
//! validation, reads and cursors.

use eventlog::{Error, EventId, ExpectedVersion, NewEvent};

use crate::support::{close, decoded, event, event_with_id, events, labels, open};

#[tokio::test]
async fn positions_and_versions_start_at_zero_and_have_no_gaps() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open(dir.path());
    let a = log
        .append("a", ExpectedVersion::NoStream, events(&["a0", "a1"]))
        .await
        .expect("append a");
    let b = log
        .append("b", ExpectedVersion::NoStream, events(&["b0"]))
        .await
        .expect("append b");
    let a2 = log
        .append("a", ExpectedVersion::Exact(1), events(&["a2"]))
        .await
        .expect("append a again");
    assert_eq!((a.positions, a.stream_versions), (0..2, 0..2));
    assert_eq!((b.positions, b.stream_versions), (2..3, 0..1));
    assert_eq!((a2.positions, a2.stream_versions), (3..4, 2..3));
    assert_eq!(log.head(), 4);
    assert_eq!(log.stream_version("a").expect("version"), Some(2));
    assert_eq!(log.stream_version("nobody").expect("version"), None);

    let all = log.read_all(0, 100).expect("read all");
    assert_eq!(labels(&all), ["a0", "a1", "b0", "a2"]);
    let positions: Vec<u64> = all.iter().map(|event| event.position()).collect();
    assert_eq!(positions, [0, 1, 2, 3]);
    assert_eq!(
        labels(&log.read_stream("a", 1, 100).expect("read a")),
        ["a1", "a2"]
    );
    assert_eq!(
        labels(&log.read_all(1, 2).expect("read window")),
        ["a1", "b0"]
    );
    let a_events = decoded(&log.read_stream("a", 0, 100).expect("read a"));
    assert!(
        a_events
            .iter()
            .all(|event| event.stream_id == "a" && event.recorded_at.is_some())
    );
}

#[tokio::test]
async fn a_wrong_expected_version_writes_nothing_and_says_where_the_stream_is() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open(dir.path());
    log.append("s", ExpectedVersion::Any, events(&["0", "1"]))
        .await
        .expect("append");
    for (expected, actual) in [
        (ExpectedVersion::NoStream, Some(1)),
        (ExpectedVersion::Exact(0), Some(1)),
        (ExpectedVersion::Exact(5), Some(1)),
    ] {
        let error = log
            .append("s", expected, events(&["late"]))
            .await
            .expect_err("must be refused");
        match error {
            Error::WrongExpectedVersion {
                stream,
                actual: found,
                ..
            } => {
                assert_eq!(stream, "s");
                assert_eq!(found, actual);
            }
            other => panic!("expected a version conflict, got {other:?}"),
        }
    }
    let error = log
        .append("empty", ExpectedVersion::Exact(0), events(&["x"]))
        .await
        .expect_err("no stream yet");
    assert!(matches!(
        error,
        Error::WrongExpectedVersion { actual: None, .. }
    ));
    assert_eq!(log.head(), 2);
}

#[tokio::test]
async fn a_retried_batch_returns_the_original_positions_for_ever() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ids = [EventId::new(), EventId::new()];
    let batch = || {
        vec![
            event_with_id(ids[0], "first"),
            event_with_id(ids[1], "second"),
        ]
    };
    let log = open(dir.path());
    log.append("other", ExpectedVersion::Any, events(&["before"]))
        .await
        .expect("append");
    let original = log
        .append("s", ExpectedVersion::NoStream, batch())
        .await
        .expect("append");
    assert!(!original.deduplicated);
    // The retry would fail its expected version if it were applied again.
    let retry = log
        .append("s", ExpectedVersion::NoStream, batch())
        .await
        .expect("retry");
    assert!(retry.deduplicated);
    assert_eq!(retry.positions, original.positions);
    assert_eq!(retry.stream_versions, original.stream_versions);
    close(log).await;

    // Permanently: across a restart too.
    let log = open(dir.path());
    let retry = log
        .append("s", ExpectedVersion::Any, batch())
        .await
        .expect("retry after restart");
    assert!(retry.deduplicated);
    assert_eq!(retry.positions, original.positions);
    assert_eq!(log.head(), 3);
}

#[tokio::test]
async fn a_batch_mixing_written_and_new_ids_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open(dir.path());
    let written = EventId::new();
    log.append("s", ExpectedVersion::Any, vec![event_with_id(written, "w")])
        .await
        .expect("append");
    let error = log
        .append(
            "s",
            ExpectedVersion::Any,
            vec![event_with_id(written, "w"), event("new")],
        )
        .await
        .expect_err("mixed batch");
    assert!(
        matches!(error, Error::IdempotencyConflict { .. }),
        "{error}"
    );
    let error = log
        .append(
            "elsewhere",
            ExpectedVersion::Any,
            vec![event_with_id(written, "w")],
        )
        .await
        .expect_err("same id, other stream");
    assert!(
        matches!(error, Error::IdempotencyConflict { .. }),
        "{error}"
    );
    assert_eq!(log.head(), 1);
}

#[tokio::test]
async fn bad_requests_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open(dir.path());
    let twice = EventId::new();
    let cases: Vec<(&str, Vec<NewEvent>, &str)> = vec![
        ("", events(&["x"]), "stream_id"),
        ("a\0b", events(&["x"]), "stream_id"),
        (
            &*Box::leak("s".repeat(300).into_boxed_str()),
            events(&["x"]),
            "stream_id",
        ),
        ("s", vec![], "events"),
        (
            "s",
            vec![event_with_id(twice, "x"), event_with_id(twice, "y")],
            "event_id",
        ),
        ("s", vec![NewEvent::new("", b"x".to_vec())], "content_type"),
        (
            "s",
            vec![NewEvent::new("t", vec![0; 2 * 1024 * 1024])],
            "payload",
        ),
        ("s", (0..1001).map(|_| event("x")).collect(), "events"),
    ];
    for (stream, batch, field) in cases {
        match log.append(stream, ExpectedVersion::Any, batch).await {
            Err(Error::InvalidArgument { field: named, .. }) => assert_eq!(named, field),
            other => panic!("expected invalid {field}, got {other:?}"),
        }
    }
    assert_eq!(log.head(), 0);
    assert!(log.read_all(0, 10).expect("read").is_empty());
}

#[tokio::test]
async fn cursors_are_durable_and_can_be_moved() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open(dir.path());
    assert_eq!(log.cursor("projection").expect("cursor"), None);
    log.set_cursor("projection", 41).await.expect("set");
    log.set_cursor("relay", 7).await.expect("set");
    log.set_cursor("projection", 42).await.expect("set");
    assert!(matches!(
        log.set_cursor("", 1).await,
        Err(Error::InvalidArgument {
            field: "cursor",
            ..
        })
    ));
    close(log).await;
    let log = open(dir.path());
    assert_eq!(log.cursor("projection").expect("cursor"), Some(42));
    assert_eq!(log.cursor("relay").expect("cursor"), Some(7));
}

#[tokio::test]
async fn a_cursor_queued_with_an_append_is_stored_with_it_and_only_with_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open(dir.path());
    // Queued one after another, awaited later: placed in queue order.
    let first = log
        .queue_append(
            "a",
            ExpectedVersion::NoStream,
            events(&["a0"]),
            Some(("rule", 1)),
        )
        .await
        .expect("queue");
    let second = log
        .queue_append(
            "b",
            ExpectedVersion::NoStream,
            events(&["b0"]),
            Some(("rule", 2)),
        )
        .await
        .expect("queue");
    let moved = log.queue_cursor("other", 9).await.expect("queue");
    // Refused: the stream exists. Its cursor must not move either.
    let refused = log
        .queue_append(
            "a",
            ExpectedVersion::NoStream,
            events(&["a1"]),
            Some(("rule", 3)),
        )
        .await
        .expect("queue");
    assert_eq!(first.await.expect("first").positions, 0..1);
    assert_eq!(second.await.expect("second").positions, 1..2);
    moved.await.expect("cursor");
    assert!(matches!(
        refused.await,
        Err(Error::WrongExpectedVersion { .. })
    ));
    assert_eq!(log.cursor("rule").expect("cursor"), Some(2));
    // A retry of events already in moves the cursor: its effect is on disk.
    let retried = log
        .queue_append(
            "b",
            ExpectedVersion::Any,
            log_events_again(&log),
            Some(("rule", 4)),
        )
        .await
        .expect("queue")
        .await
        .expect("retry");
    assert!(retried.deduplicated);
    assert!(matches!(
        log.queue_append("a", ExpectedVersion::Any, events(&["a1"]), Some(("", 5)))
            .await,
        Err(Error::InvalidArgument {
            field: "cursor",
            ..
        })
    ));
    assert_eq!(log.head(), 2);
    close(log).await;
    let log = open(dir.path());
    assert_eq!(log.cursor("rule").expect("cursor"), Some(4));
    assert_eq!(log.cursor("other").expect("cursor"), Some(9));
    assert_eq!(labels(&log.read_all(0, 10).expect("read")), ["a0", "b0"]);
}

/// Stream `b`'s one event again, with its own id: what a retry sends.
fn log_events_again(log: &eventlog::EventLog) -> Vec<NewEvent> {
    let recorded = log.read_stream("b", 0, 1).expect("read");
    let envelope = recorded[0].envelope().expect("envelope");
    let id = EventId::from_slice(&envelope.event_id).expect("id");
    vec![event_with_id(id, "b0")]
}

#[tokio::test]
async fn events_keep_every_envelope_field_across_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open(dir.path());
    let mut new = event("full");
    new.correlation_id = b"correlation".to_vec();
    new.causation_id = b"causation".to_vec();
    new.content_version = 3;
    new.actor = Some(contract::events::v1::Actor {
        kind: Some(contract::events::v1::actor::Kind::System(
            "conference-scheduler".into(),
        )),
    });
    log.append("s", ExpectedVersion::Any, vec![new.clone()])
        .await
        .expect("append");
    let before = log.read_all(0, 1).expect("read");
    close(log).await;
    let log = open(dir.path());
    let after = log.read_all(0, 1).expect("read");
    assert_eq!(before, after);
    let stored = &after[0].envelope().expect("decodes");
    assert_eq!(stored.event_id, new.event_id.as_bytes().to_vec());
    assert_eq!(stored.correlation_id, b"correlation");
    assert_eq!(stored.causation_id, b"causation");
    assert_eq!(stored.content_version, 3);
    assert_eq!(stored.actor, new.actor);
    assert_eq!(stored.occurred_at, Some(new.occurred_at.into()));
    assert!(log.size_on_disk().expect("size") > 0);
    assert_eq!(log.verify().expect("verify").records, 1);
}

#[tokio::test]
async fn a_closed_log_refuses_writes_but_still_reads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open(dir.path());
    let other = log.clone();
    log.append("s", ExpectedVersion::Any, events(&["kept"]))
        .await
        .expect("append");
    log.close().await.expect("close");
    let error = other
        .append("s", ExpectedVersion::Any, events(&["late"]))
        .await
        .expect_err("closed");
    assert!(matches!(error, Error::Closed));
    assert_eq!(labels(&other.read_all(0, 10).expect("read")), ["kept"]);
}

/// Requests that arrive together are decided in one group: the same batch
/// sent twenty times at once is written once, and twenty writers expecting
/// an empty stream have exactly one winner.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicates_and_races_are_decided_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open(dir.path());
    let ids = [EventId::new(), EventId::new(), EventId::new()];
    let mut retries = Vec::new();
    for _ in 0..20 {
        let log = log.clone();
        retries.push(tokio::spawn(async move {
            let batch = ids.iter().map(|id| event_with_id(*id, "same")).collect();
            log.append("retried", ExpectedVersion::Any, batch).await
        }));
    }
    let mut racers = Vec::new();
    for racer in 0..20 {
        let log = log.clone();
        racers.push(tokio::spawn(async move {
            log.append(
                "raced",
                ExpectedVersion::NoStream,
                events(&[&racer.to_string()]),
            )
            .await
        }));
    }
    let mut outcomes = Vec::new();
    for retry in retries {
        outcomes.push(retry.await.expect("task").expect("append"));
    }
    let first = outcomes
        .iter()
        .find(|outcome| !outcome.deduplicated)
        .expect("one write");
    assert_eq!(
        outcomes
            .iter()
            .filter(|outcome| !outcome.deduplicated)
            .count(),
        1
    );
    assert!(
        outcomes
            .iter()
            .all(|outcome| outcome.positions == first.positions)
    );
    let mut winners = 0;
    for racer in racers {
        match racer.await.expect("task") {
            Ok(outcome) => {
                winners += 1;
                assert_eq!(outcome.stream_versions, 0..1);
            }
            Err(Error::WrongExpectedVersion {
                actual: Some(0), ..
            }) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(log.head(), 4);
    assert_eq!(log.verify().expect("verify").records, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_while_appends_are_in_flight() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open(dir.path());
    let writer = {
        let log = log.clone();
        tokio::spawn(async move {
            for index in 0..400 {
                let stream = format!("s{}", index % 7);
                log.append(&stream, ExpectedVersion::Any, events(&["x", "y"]))
                    .await
                    .expect("append");
            }
        })
    };
    let mut checks = 0;
    while !writer.is_finished() {
        let report = log.verify().expect("a healthy log verifies");
        assert!(report.records <= log.head());
        checks += 1;
        tokio::task::yield_now().await;
    }
    writer.await.expect("writer");
    assert!(checks > 1);
    assert_eq!(log.verify().expect("verify").records, 800);
}

#[tokio::test]
async fn options_beyond_what_sled_can_make_durable_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = eventlog::Options {
        max_event_bytes: eventlog::MAX_EVENT_BYTES + 1,
        ..eventlog::Options::new(dir.path())
    };
    assert!(matches!(
        eventlog::EventLog::open(options),
        Err(Error::InvalidArgument {
            field: "options",
            ..
        })
    ));
}

#[tokio::test]
async fn an_atomic_write_to_several_streams_goes_in_whole_or_not_at_all_and_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open(dir.path());
    log.append("taken", ExpectedVersion::Any, events(&["t0"]))
        .await
        .expect("append");
    let parts = |taken: ExpectedVersion| {
        vec![
            ("p1".to_owned(), ExpectedVersion::NoStream, events(&["p1"])),
            ("p2".to_owned(), ExpectedVersion::NoStream, events(&["p2"])),
            ("taken".to_owned(), taken, events(&["t1"])),
        ]
    };
    // The last part's version is wrong: nothing goes in, and the error
    // names that stream.
    let refused = log
        .append_all(parts(ExpectedVersion::NoStream))
        .await
        .expect_err("a wrong version in one part");
    assert!(
        matches!(&refused, Error::WrongExpectedVersion { stream, .. } if stream == "taken"),
        "{refused:?}"
    );
    assert_eq!(log.head(), 1, "nothing of the refused write");
    let first = parts(ExpectedVersion::Exact(0));
    let again = first.clone();
    let written = log.append_all(first).await.expect("written whole");
    assert_eq!(
        written
            .iter()
            .map(|o| o.positions.clone())
            .collect::<Vec<_>>(),
        [1..2, 2..3, 3..4]
    );
    // The same write again is a retry of every part: nothing is written.
    let retried = log.append_all(again).await.expect("a retry");
    assert!(retried.iter().all(|outcome| outcome.deduplicated));
    assert_eq!(log.head(), 4);
    // A stream twice in one write is refused before anything is placed.
    let twice = vec![
        ("q".to_owned(), ExpectedVersion::Any, events(&["q0"])),
        ("q".to_owned(), ExpectedVersion::Any, events(&["q1"])),
    ];
    assert!(matches!(
        log.append_all(twice).await,
        Err(Error::InvalidArgument {
            field: "stream_id",
            ..
        })
    ));
    assert_eq!(log.head(), 4);
    close(log).await;
}
