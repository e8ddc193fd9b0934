//! `EventLogReader`: every service serves its own log's records, so a
//! consumer that finds a gap in what the bus delivered can fetch the missing
//! events from their producer (gap repair).

use std::collections::HashMap;
use std::pin::Pin;

use contract::events::v1 as wire;
use contract::events::v1::event_log_reader_server::{self, EventLogReaderServer};
use eventlog::EventLog;
use tonic::{Request, Response, Status};

/// The most records one `ReadEvents` call returns; a reader asks again
/// from where it got to.
pub const MAX_READ: usize = 1_000;

/// Serves the logs it is given, by producer name.
#[derive(Debug, Clone, Default)]
pub struct LogReader {
    logs: HashMap<String, EventLog>,
}

impl LogReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `log` as `producer`'s.
    pub fn with(mut self, producer: &str, log: EventLog) -> Self {
        self.logs.insert(producer.to_owned(), log);
        self
    }

    pub fn into_server(self) -> EventLogReaderServer<Self> {
        EventLogReaderServer::new(self)
    }
}

type Records = Pin<Box<dyn tokio_stream::Stream<Item = Result<wire::StoredRecord, Status>> + Send>>;

#[tonic::async_trait]
impl event_log_reader_server::EventLogReader for LogReader {
    type ReadEventsStream = Records;

    async fn read_events(
        &self,
        request: Request<wire::ReadEventsRequest>,
    ) -> Result<Response<Records>, Status> {
        // Whole events, about any child: for the backbone's services alone.
        trust::policy::allow_request("safeguard.events.v1.EventLogReader/ReadEvents", &request)?;
        let request = request.into_inner();
        let log = self
            .logs
            .get(&request.log)
            .ok_or_else(|| Status::not_found(format!("log: {} is not served here", request.log)))?;
        let limit = match request.limit as usize {
            0 => MAX_READ,
            limit => limit.min(MAX_READ),
        };
        let records: Vec<Result<wire::StoredRecord, Status>> = log
            .read_all(request.from_position, limit)
            .map_err(|error| Status::unavailable(format!("log {}: {error}", request.log)))?
            .into_iter()
            .map(|event| {
                Ok(wire::StoredRecord {
                    position: event.position(),
                    record: event.record().to_vec(),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(records))))
    }
}
