//! Subscriptions and concurrency: one gap-free order that every subscriber
//! sees identically, whether it catches up from disk, follows live, or lags.

use std::time::Duration;

use eventlog::{Error, EventLog, ExpectedVersion, Options, Subscription};
use tokio::time::timeout;

use crate::support::{decoded, event, events, open};

async fn take(subscription: &mut Subscription, count: usize) -> Vec<u64> {
    let mut positions = Vec::with_capacity(count);
    for _ in 0..count {
        let event = timeout(Duration::from_secs(20), subscription.next())
            .await
            .expect("an event arrives in time")
            .expect("subscription works");
        positions.push(event.position());
    }
    positions
}

#[tokio::test]
async fn catches_up_from_disk_then_follows_live_without_gap_or_duplicate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open(dir.path());
    for index in 0..1200 {
        log.append("s", ExpectedVersion::Any, vec![event(&index.to_string())])
            .await
            .expect("append");
    }
    let mut subscription = log.subscribe(5);
    let writer = {
        let log = log.clone();
        tokio::spawn(async move {
            for index in 1200..1500 {
                log.append("s", ExpectedVersion::Any, vec![event(&index.to_string())])
                    .await
                    .expect("append");
            }
        })
    };
    let positions = take(&mut subscription, 1495).await;
    assert_eq!(positions, (5..1500).collect::<Vec<_>>());
    writer.await.expect("writer");
    // Nothing more arrives until something is appended.
    assert!(
        timeout(Duration::from_millis(100), subscription.next())
            .await
            .is_err()
    );
    log.append("s", ExpectedVersion::Any, events(&["late"]))
        .await
        .expect("append");
    assert_eq!(take(&mut subscription, 1).await, [1500]);
}

#[tokio::test]
async fn a_slow_subscriber_falls_back_to_disk_and_misses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = EventLog::open(Options {
        live_buffer_groups: 2,
        ..Options::new(dir.path())
    })
    .expect("open");
    let mut subscription = log.subscribe(0);
    log.append("s", ExpectedVersion::Any, events(&["0"]))
        .await
        .expect("append");
    assert_eq!(take(&mut subscription, 1).await, [0]);
    // Caught up and waiting on the live buffer of 2 groups...
    assert!(
        timeout(Duration::from_millis(50), subscription.next())
            .await
            .is_err()
    );
    // ...while 200 groups pass without it reading: 100 times its buffer.
    for index in 1..=200 {
        log.append("s", ExpectedVersion::Any, vec![event(&index.to_string())])
            .await
            .expect("append");
    }
    assert_eq!(
        take(&mut subscription, 200).await,
        (1..=200).collect::<Vec<_>>()
    );
    // Waiting again, it finds it lost its place in the buffer, rejoins, and
    // the next event still arrives exactly once.
    assert!(
        timeout(Duration::from_millis(50), subscription.next())
            .await
            .is_err()
    );
    assert_eq!(subscription.times_fell_behind(), 1);
    log.append("s", ExpectedVersion::Any, events(&["201"]))
        .await
        .expect("append");
    assert_eq!(take(&mut subscription, 1).await, [201]);
}

#[tokio::test]
async fn a_subscription_ends_with_closed_after_the_log_closes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open(dir.path());
    log.append("s", ExpectedVersion::Any, events(&["a", "b"]))
        .await
        .expect("append");
    let mut subscription = log.subscribe(0);
    log.close().await.expect("close");
    assert_eq!(take(&mut subscription, 2).await, [0, 1]);
    assert!(matches!(subscription.next().await, Err(Error::Closed)));
}

/// Many tasks append to shared and private streams at once; the result is
/// one gap-free order, every stream gap-free, and every subscriber (started
/// before, during and after) sees exactly the same sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_form_one_order_that_every_subscriber_sees() {
    const TASKS: usize = 32;
    const BATCHES: usize = 40;
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open(dir.path());
    let total: usize = (0..TASKS)
        .flat_map(|task| (0..BATCHES).map(move |batch| 1 + (task + batch) % 3))
        .sum();
    // Subscribers that read while the appends run: they switch between
    // disk and live many times over.
    let following: Vec<_> = (0..3)
        .map(|_| {
            let mut subscription = log.subscribe(0);
            tokio::spawn(async move { take(&mut subscription, total).await })
        })
        .collect();
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for batch in 0..BATCHES {
                let stream = if batch % 2 == 0 {
                    "shared".to_owned()
                } else {
                    format!("task-{task}")
                };
                let size = 1 + (task + batch) % 3;
                let labels: Vec<String> = (0..size)
                    .map(|item| format!("{task}/{batch}/{item}"))
                    .collect();
                let outcome = log
                    .append(
                        &stream,
                        ExpectedVersion::Any,
                        labels.iter().map(|label| event(label)).collect(),
                    )
                    .await
                    .expect("append");
                acknowledged.push((outcome.positions, labels));
            }
            acknowledged
        }));
    }
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.extend(task.await.expect("task"));
    }
    let mut late = log.subscribe(0);
    assert_eq!(log.head(), total as u64);

    let all = decoded(&log.read_all(0, total + 10).expect("read all"));
    assert_eq!(all.len(), total);
    for (index, event) in all.iter().enumerate() {
        assert_eq!(event.global_position, index as u64);
    }
    // Each batch is where its append said, contiguous and in order.
    let all_labels: Vec<String> = all
        .iter()
        .map(|event| String::from_utf8_lossy(&event.payload).into_owned())
        .collect();
    for (positions, labels) in &acknowledged {
        let stored = &all_labels[positions.start as usize..positions.end as usize];
        assert_eq!(stored, labels.as_slice());
    }
    // Every stream is gap-free.
    let mut versions = std::collections::HashMap::new();
    for event in &all {
        let next = versions.entry(event.stream_id.clone()).or_insert(0_u64);
        assert_eq!(event.stream_version, *next, "stream {}", event.stream_id);
        *next += 1;
    }
    let expected: Vec<u64> = (0..total as u64).collect();
    for subscriber in following {
        assert_eq!(subscriber.await.expect("subscriber"), expected);
    }
    assert_eq!(take(&mut late, total).await, expected);
    assert_eq!(log.verify().expect("verify").records, total as u64);
}
