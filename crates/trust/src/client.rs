//! The calling side: connect to a backbone service over mutual TLS,
//! presenting a certificate, and send a person's access token with every
//! request.

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::layer::AUTHORIZATION;
use crate::realm::Issued;

/// What a client presents: a certificate (over TLS) and, for a person, a
/// token.
#[derive(Clone)]
pub struct Credentials {
    tls: ClientTlsConfig,
    bearer: Bearer,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").finish_non_exhaustive()
    }
}

impl Credentials {
    /// Trusting servers whose certificates `ca_pem` signs, presenting `client`.
    pub fn new(ca_pem: &str, client: &Issued) -> Credentials {
        Credentials::from_tls(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca_pem))
                .identity(Identity::from_pem(&client.certificate, &client.key)),
        )
    }

    pub fn from_tls(tls: ClientTlsConfig) -> Credentials {
        Credentials {
            tls,
            bearer: Bearer(None),
        }
    }

    /// TLS trusting `ca_pem` and presenting no certificate at all: for
    /// tests of what the backbone refuses.
    pub fn anonymous(ca_pem: &str) -> Credentials {
        Credentials::from_tls(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem)))
    }

    /// The same, sending `token` with every request.
    pub fn with_token(mut self, token: String) -> Credentials {
        self.bearer = Bearer::new(&token);
        self
    }

    pub fn tls(&self) -> ClientTlsConfig {
        self.tls.clone()
    }

    pub fn bearer(&self) -> Bearer {
        self.bearer.clone()
    }

    /// A channel to `url`, connected on first use.
    pub fn channel(&self, url: &str) -> Result<Channel, String> {
        Ok(endpoint(url, self.tls.clone())?.connect_lazy())
    }

    /// A channel to `url` with the token on every request, connected on
    /// first use: what a generated client is built on
    /// (`XClient::new(credentials.connect(url)?)`).
    pub fn connect(&self, url: &str) -> Result<Authorised, String> {
        Ok(InterceptedService::new(self.channel(url)?, self.bearer()))
    }
}

/// A channel that sends the caller's token with every request.
pub type Authorised = InterceptedService<Channel, Bearer>;

/// An endpoint at `url` over TLS. Addresses are written `https://host:port`;
/// an `http://` address, or a bare `host:port`, is taken as the same place
/// over TLS, never as leave to send anything in the clear.
pub fn endpoint(url: &str, tls: ClientTlsConfig) -> Result<Endpoint, String> {
    let url = https(url);
    Endpoint::from_shared(url.clone())
        .map_err(|error| format!("{url}: {error}"))?
        .tls_config(tls)
        .map_err(|error| format!("{url}: {error}"))
}

/// `url` as an `https://` address.
pub fn https(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("http://") {
        format!("https://{rest}")
    } else if url.starts_with("https://") {
        url.to_owned()
    } else {
        format!("https://{url}")
    }
}

/// Puts `authorization: Bearer <token>` on each request, when there is one.
#[derive(Clone, Debug)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    pub fn new(token: &str) -> Bearer {
        Bearer(format!("Bearer {token}").parse().ok())
    }

    pub fn none() -> Bearer {
        Bearer(None)
    }
}

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert(AUTHORIZATION, value.clone());
        }
        Ok(request)
    }
}
