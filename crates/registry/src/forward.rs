//! A read replica's plan writes: the primary alone writes plans, so a
//! replica passes each plan-write RPC to it (`forward_on_replica!`, one
//! line in each) and answers once it shows the result itself.

use std::error::Error as _;
use std::future::Future;

use contract::common::v1::ConsistencyToken;
use contract::registry::v1 as wire;
use contract::registry::v1::plan_registry_client::PlanRegistryClient;
use service_core::consistency;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::LOG;
use crate::service::PlanRegistry;

/// A read replica's connection to the primary, which makes its plan writes.
pub(crate) type Primary = PlanRegistryClient<Channel>;

/// The primary at `url`, connected on first use: a replica starts and
/// answers lookups while the primary is away, and a write it cannot pass on
/// fails within seconds, not at the caller's patience.
pub(crate) fn primary(
    url: &str,
    tls: Option<tonic::transport::ClientTlsConfig>,
) -> Result<Primary, String> {
    let tls = tls.ok_or("no TLS is configured to reach the primary with")?;
    // The replica connects with its service certificate and passes on the
    // caller's own token: the primary verifies who they are itself.
    let endpoint = trust::client::endpoint(url, tls)?
        .connect_timeout(std::time::Duration::from_secs(2))
        // Above the primary's own worst case: catching up, appending, then
        // waiting for its view, each wait up to `DEFAULT_WAIT`.
        .timeout(3 * consistency::DEFAULT_WAIT + std::time::Duration::from_secs(5));
    Ok(PlanRegistryClient::new(endpoint.connect_lazy()))
}

/// An answer to a plan write: the token of what it wrote.
pub(crate) trait Answered {
    fn token(&self) -> Option<&ConsistencyToken>;
}

impl Answered for wire::PlanResponse {
    fn token(&self) -> Option<&ConsistencyToken> {
        self.token.as_ref()
    }
}

impl Answered for wire::ImportCaseloadReport {
    fn token(&self) -> Option<&ConsistencyToken> {
        self.token.as_ref()
    }
}

impl Answered for wire::LinkNhsNumberResponse {
    fn token(&self) -> Option<&ConsistencyToken> {
        self.token.as_ref()
    }
}

impl Answered for wire::SetLocalAuthorityContactsResponse {
    fn token(&self) -> Option<&ConsistencyToken> {
        self.token.as_ref()
    }
}

/// On a read replica, returns the primary's answer to the plan write
/// `$request`, made by the client method `$method`.
macro_rules! forward_on_replica {
    ($service:expr, $request:expr, $method:ident) => {
        if let Some(primary) = $service.primary() {
            let call = |mut primary: $crate::forward::Primary, request| async move {
                primary.$method(request).await
            };
            return $service.forward(primary, $request, call).await;
        }
    };
}
pub(crate) use forward_on_replica;

impl PlanRegistry {
    /// A plan write reaching a read replica: the primary makes it, and the
    /// answer waits until this pod shows it, so the caller reads its own
    /// write here too. Once the primary has said yes the answer is yes: the
    /// write is made, and a caller told to retry would make a second plan.
    pub(crate) async fn forward<Req, Resp, Call, Answer>(
        &self,
        primary: Primary,
        request: Request<Req>,
        call: Call,
    ) -> Result<Response<Resp>, Status>
    where
        Resp: Answered,
        Call: FnOnce(Primary, Request<Req>) -> Answer,
        Answer: Future<Output = Result<Response<Resp>, Status>>,
    {
        // The caller's own token goes with it: the primary verifies who
        // they are itself, trusting this pod's service certificate only to
        // have checked that the token's organisation is the caller's.
        let authorization = request.metadata().get(trust::layer::AUTHORIZATION).cloned();
        let mut forwarded = Request::new(request.into_inner());
        if let Ok(traceparent) = service_core::trace::current().parse() {
            forwarded.metadata_mut().insert("traceparent", traceparent);
        }
        if let Some(authorization) = authorization {
            forwarded
                .metadata_mut()
                .insert(trust::layer::AUTHORIZATION, authorization);
        }
        let response = call(primary, forwarded)
            .await
            .map_err(|status| {
                // A status with a source came from this side of the
                // connection (it could not be made); one the primary sent
                // back has none and is passed on as it is.
                if status.code() == tonic::Code::Unavailable && status.source().is_some() {
                    Status::unavailable(format!(
                        "plans are recorded by the registry's primary ({LOG}), which cannot be reached: {}; retry shortly",
                        status.message()
                    ))
                } else {
                    status
                }
            })?;
        if let Err(status) = self.reflect(response.get_ref().token()).await {
            tracing::warn!(
                reason = status.message(),
                "a plan write made by the primary is not shown here yet"
            );
        }
        Ok(response)
    }
}
