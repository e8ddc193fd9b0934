//! `ServiceStatus`, served beside gRPC health by every service's binary and
//! by the one-process backbone: for each service, whether it does all its
//! work, what stopped if not, and every record it quarantined.

use contract::events::v1::service_status_server::{self, ServiceStatusServer};
use contract::events::v1::{GetStatusRequest, GetStatusResponse};
use tonic::{Request, Response};

use crate::Health;

/// The services behind one address, each with its health.
#[derive(Debug, Clone, Default)]
pub struct Status {
    services: Vec<(String, Health)>,
}

impl Status {
    pub fn new() -> Self {
        Status::default()
    }

    /// Adds `service` (its producer name) and its health.
    pub fn with(mut self, service: impl Into<String>, health: Health) -> Self {
        self.services.push((service.into(), health));
        self
    }

    pub fn into_server(self) -> ServiceStatusServer<Self> {
        ServiceStatusServer::new(self).max_decoding_message_size(crate::limits::MAX_REQUEST_BYTES)
    }
}

#[tonic::async_trait]
impl service_status_server::ServiceStatus for Status {
    async fn get_status(
        &self,
        request: Request<GetStatusRequest>,
    ) -> Result<Response<GetStatusResponse>, tonic::Status> {
        // What stopped and which records were set aside: for the people who
        // run the backbone and for its own services, no one else.
        crate::policy::allow_request("safeguard.events.v1.ServiceStatus/GetStatus", &request)?;
        Ok(Response::new(GetStatusResponse {
            services: self
                .services
                .iter()
                .map(|(service, health)| health.status(service))
                .collect(),
        }))
    }
}
