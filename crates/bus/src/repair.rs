//! Gap repair: a producer's positions are contiguous, so a consumer that
//! receives position 12 when it expected 9 knows 9, 10 and 11 are missing
//! (lost from JetStream, say) and reads them from the producer itself: from
//! its log when it runs in this process, else over its `ReadEvents` RPC,
//! over mutual TLS with this process's service certificate (the producer
//! answers only services), each call bounded in time.

use std::time::Duration;

use contract::events::v1::ReadEventsRequest;
use contract::events::v1::event_log_reader_client::EventLogReaderClient;
use eventlog::{EventLog, RecordedEvent};

/// How long connecting to a producer, and then one `ReadEvents` call, may
/// take before the attempt counts as failed (and is tried again later).
const CONNECT_WITHIN: Duration = Duration::from_secs(5);
const READ_WITHIN: Duration = Duration::from_secs(20);

/// Where the missing events come from.
#[derive(Debug, Clone)]
pub(crate) enum Repair {
    Local(EventLog),
    Remote(String, tonic::transport::ClientTlsConfig),
}

/// How much of a range the caller needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// Every position: a gap that a genuine record revealed, which the
    /// producer must have.
    All,
    /// What the producer has of it: a position only a refused message
    /// claimed, which may not exist.
    Available,
}

impl Repair {
    /// The events of `producer` at positions `from..to`, in order.
    pub(crate) async fn read(
        &self,
        producer: &str,
        from: u64,
        to: u64,
        need: Need,
    ) -> Result<Vec<RecordedEvent>, String> {
        let mut events = Vec::new();
        let mut next = from;
        while next < to {
            let chunk = match self {
                Repair::Local(log) => log
                    .read_all(next, (to - next).min(1_000) as usize)
                    .map_err(|error| error.to_string())?,
                Repair::Remote(url, tls) => read_remote(url, tls, producer, next, to).await?,
            };
            let Some(last) = chunk.last() else {
                if need == Need::Available {
                    break;
                }
                return Err(format!(
                    "{producer} has no event at position {next} to give"
                ));
            };
            next = last.position() + 1;
            events.extend(chunk.into_iter().filter(|event| event.position() < to));
        }
        if events
            .iter()
            .zip(from..)
            .any(|(event, position)| event.position() != position)
        {
            return Err(format!("{producer} gave positions out of order"));
        }
        Ok(events)
    }
}

async fn read_remote(
    url: &str,
    tls: &tonic::transport::ClientTlsConfig,
    producer: &str,
    from: u64,
    to: u64,
) -> Result<Vec<RecordedEvent>, String> {
    let channel = trust::client::endpoint(url, tls.clone())?
        .connect_timeout(CONNECT_WITHIN)
        .timeout(READ_WITHIN)
        .connect()
        .await
        .map_err(|error| format!("cannot reach {producer} at {url}: {error}"))?;
    let mut client = EventLogReaderClient::new(channel);
    let read =
        async {
            let mut records = client
                .read_events(ReadEventsRequest {
                    log: producer.to_owned(),
                    from_position: from,
                    limit: (to - from).min(1_000) as u32,
                })
                .await
                .map_err(|status| format!("{producer} refused ReadEvents: {}", status.message()))?
                .into_inner();
            let mut events = Vec::new();
            while let Some(record) = records.message().await.map_err(|status| {
                format!("ReadEvents from {producer} failed: {}", status.message())
            })? {
                events.push(
                    RecordedEvent::from_record(record.position, &record.record)
                        .map_err(|error| error.to_string())?,
                );
            }
            Ok(events)
        };
    tokio::time::timeout(READ_WITHIN, read)
        .await
        .map_err(|_| format!("ReadEvents from {producer} took longer than {READ_WITHIN:?}"))?
}
