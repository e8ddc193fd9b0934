//! The bus contract, against the in-process bus: order per producer,
//! resumption from a position, late producers, several consumers.

use std::time::Duration;

use bus::{Bus, BusSubscription};
use eventlog::{EventLog, ExpectedVersion, NewEvent, Options};
use tokio::time::timeout;

async fn positions(subscription: &mut BusSubscription, count: usize) -> Vec<u64> {
    let mut positions = Vec::new();
    for _ in 0..count {
        let delivery = timeout(Duration::from_secs(10), subscription.next())
            .await
            .expect("in time")
            .expect("delivery");
        assert_eq!(&*delivery.producer, subscription.producer());
        positions.push(delivery.event.position());
    }
    positions
}

async fn append(log: &EventLog, count: usize) {
    for _ in 0..count {
        log.append(
            "s",
            ExpectedVersion::Any,
            vec![NewEvent::new("t", b"x".to_vec())],
        )
        .await
        .expect("append");
    }
}

#[tokio::test]
async fn consumers_get_each_producers_events_in_order_from_where_they_ask() {
    let dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];
    let bus = Bus::in_process();
    // A consumer may subscribe before its producer exists.
    let early = {
        let bus = bus.clone();
        tokio::spawn(async move { bus.subscribe("referral-intake", 0).await })
    };
    let referrals = EventLog::open(Options::new(dirs[0].path())).expect("open");
    let conferences = EventLog::open(Options::new(dirs[1].path())).expect("open");
    bus.register_producer("referral-intake", referrals.clone())
        .expect("register");
    bus.register_producer("conference-scheduler", conferences.clone())
        .expect("register");
    assert!(
        bus.register_producer("referral-intake", referrals.clone())
            .is_err()
    );
    append(&referrals, 5).await;
    append(&conferences, 3).await;

    let mut early = early.await.expect("task").expect("subscribe");
    assert_eq!(positions(&mut early, 5).await, [0, 1, 2, 3, 4]);
    let mut resumed = bus
        .subscribe("referral-intake", 3)
        .await
        .expect("subscribe");
    assert_eq!(positions(&mut resumed, 2).await, [3, 4]);
    let mut other = bus
        .subscribe("conference-scheduler", 0)
        .await
        .expect("subscribe");
    assert_eq!(positions(&mut other, 3).await, [0, 1, 2]);
    // And live, as they come.
    append(&referrals, 2).await;
    assert_eq!(positions(&mut early, 2).await, [5, 6]);
    assert_eq!(positions(&mut resumed, 2).await, [5, 6]);
}
