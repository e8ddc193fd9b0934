//! Client plumbing: who the command acts as and the credentials that prove
//! it, and printing any response as JSON through the contract's
//! descriptors.

use std::path::PathBuf;
use std::time::Duration;

use contract::common::v1::{CareSetting, Role};
use prost::{Message, Name};
use prost_reflect::{DescriptorPool, DynamicMessage};
use trust::client::{Authorised, Credentials};
use trust::realm::Issued;
use trust::token::Person;

/// Where `safeguard up` keeps its development realm by default.
pub const DEFAULT_REALM: &str = "./safeguard-data/realm";

/// How long a token the CLI mints in a development realm lasts: one command.
const COMMAND: Duration = Duration::from_secs(300);

/// Who the command acts as, and how that is proven. In a development realm
/// (`--realm`, made by `safeguard up`) the `--as-*` flags name the person,
/// and the CLI presents their organisation's certificate and a short-lived
/// token the realm signs. Against a production backbone, give your
/// system's certificate, key and the server's CA (`--cert`, `--key`,
/// `--ca`, `--cert-key`) and the access token your identity provider issued (`--token`):
/// then the token says who you are and the `--as-*` flags are not used.
#[derive(Debug, Clone, clap::Args)]
pub struct Identity {
    /// The caller's organisation ODS code.
    #[arg(long = "as-org", env = "SAFEGUARD_ORG", default_value = "E09000999")]
    pub organisation: String,
    #[arg(long = "as-org-name", env = "SAFEGUARD_ORG_NAME", default_value = "")]
    pub organisation_name: String,
    #[arg(long = "as-user", env = "SAFEGUARD_USER", default_value = "cli-user")]
    pub user: String,
    /// A role from the contract, e.g. SOCIAL_WORKER, UNSCHEDULED_CARE_CLINICIAN.
    #[arg(
        long = "as-role",
        env = "SAFEGUARD_ROLE",
        default_value = "SOCIAL_WORKER"
    )]
    pub role: String,
    /// A care setting from the contract, e.g. EMERGENCY_DEPARTMENT: where
    /// the caller is working, sent with a lookup.
    #[arg(
        long = "as-setting",
        env = "SAFEGUARD_SETTING",
        default_value = "SOCIAL_CARE"
    )]
    pub setting: String,
    /// The development realm to act in.
    #[arg(long, env = "SAFEGUARD_REALM", default_value = DEFAULT_REALM)]
    pub realm: PathBuf,
    /// Your system's client certificate (PEM), instead of a realm's.
    #[arg(long, env = "SAFEGUARD_CERT", requires_all = ["cert_key", "ca"])]
    pub cert: Option<PathBuf>,
    /// The key of `--cert` (PEM).
    #[arg(long, env = "SAFEGUARD_CERT_KEY")]
    pub cert_key: Option<PathBuf>,
    /// The CA bundle (PEM) that signs the backbone's server certificate.
    #[arg(long, env = "SAFEGUARD_CA")]
    pub ca: Option<PathBuf>,
    /// Your access token, from your identity provider.
    #[arg(long, env = "SAFEGUARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

fn read(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))
}

impl Identity {
    pub fn role(&self) -> Result<Role, String> {
        Role::from_str_name(&format!(
            "ROLE_{}",
            self.role.to_uppercase().replace('-', "_")
        ))
        .ok_or_else(|| format!("--as-role: unknown role {}", self.role))
    }

    pub fn care_setting(&self) -> Result<CareSetting, String> {
        CareSetting::from_str_name(&format!(
            "CARE_SETTING_{}",
            self.setting.to_uppercase().replace('-', "_")
        ))
        .ok_or_else(|| format!("--as-setting: unknown care setting {}", self.setting))
    }

    /// The person the `--as-*` flags name, in `role`.
    fn person(&self, role: Role) -> Person {
        Person {
            organisation: self.organisation.clone(),
            organisation_name: self.organisation_name.clone(),
            user_id: self.user.clone(),
            display_name: self.user.clone(),
            role: crate::agencies::role_code(role),
        }
    }

    /// The certificate and token this command presents.
    pub fn credentials(&self) -> Result<Credentials, String> {
        self.credentials_in(self.role()?)
    }

    /// The same, acting in `role` whatever `--as-role` says (an operator's
    /// command, say).
    pub fn credentials_in(&self, role: Role) -> Result<Credentials, String> {
        if let (Some(cert), Some(key), Some(ca)) = (&self.cert, &self.cert_key, &self.ca) {
            let issued = Issued {
                certificate: read(cert)?,
                key: read(key)?,
            };
            let credentials = Credentials::new(&read(ca)?, &issued);
            return Ok(match &self.token {
                Some(token) => credentials.with_token(token.clone()),
                None => credentials,
            });
        }
        let realm = trust::Realm::open(&self.realm).map_err(|error| {
            format!(
                "{error}\n(start the backbone with `safeguard up` first, point --realm at its realm, or give --cert, --key, --ca and --token)"
            )
        })?;
        realm.credentials(&self.person(role), COMMAND)
    }

    /// A channel to `server` presenting these credentials.
    pub fn connect(&self, server: &str) -> Result<Authorised, String> {
        self.credentials()?.connect(server)
    }
}

/// Any message of the contract as one JSON document (protobuf JSON mapping).
pub fn to_json<M: Message + Name>(message: &M) -> Result<String, String> {
    let pool =
        DescriptorPool::decode(contract::FILE_DESCRIPTOR_SET).map_err(|error| error.to_string())?;
    let descriptor = pool
        .get_message_by_name(&M::full_name())
        .ok_or_else(|| format!("{} is not in the contract", M::full_name()))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(|error| error.to_string())?;
    serde_json::to_string(&dynamic).map_err(|error| error.to_string())
}

pub fn show_date(date: Option<&contract::common::v1::Date>) -> String {
    date.map_or_else(|| "-".into(), service_core::validate::iso_date)
}

/// Calls any RPC of the contract by name with a JSON request, and returns
/// the response as JSON: every RPC is reachable from the command line, in
/// the protobuf JSON mapping, without a subcommand of its own.
pub async fn call(
    server: &str,
    identity: &Identity,
    method: &str,
    request: &str,
) -> Result<String, String> {
    let pool =
        DescriptorPool::decode(contract::FILE_DESCRIPTOR_SET).map_err(|error| error.to_string())?;
    let (service_name, method_name) = method
        .rsplit_once(['/', '.'])
        .ok_or_else(|| format!("{method}: name a method as <package>.<Service>/<Method>"))?;
    let service = pool.get_service_by_name(service_name).ok_or_else(|| {
        format!("no service {service_name}; e.g. safeguard.registry.v1.PlanRegistry")
    })?;
    let method = service
        .methods()
        .find(|candidate| candidate.name() == method_name)
        .ok_or_else(|| format!("{service_name} has no method {method_name}"))?;
    if method.is_server_streaming() || method.is_client_streaming() {
        return Err(format!(
            "{method_name} streams: use a subcommand such as subscribe"
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_str(request);
    let message = DynamicMessage::deserialize(method.input(), &mut deserializer)
        .map_err(|error| format!("request: {error}"))?;
    let mut grpc = tonic::client::Grpc::new(identity.connect(server)?);
    grpc.ready().await.map_err(|error| error.to_string())?;
    let path = tonic::codegen::http::uri::PathAndQuery::try_from(format!(
        "/{}/{}",
        service.full_name(),
        method.name()
    ))
    .map_err(|error| error.to_string())?;
    let response = grpc
        .unary(
            tonic::Request::new(bytes::Bytes::from(message.encode_to_vec())),
            path,
            RawCodec,
        )
        .await
        .map_err(|status| format!("{:?}: {}", status.code(), status.message()))?;
    let decoded = DynamicMessage::decode(method.output(), response.into_inner())
        .map_err(|error| error.to_string())?;
    serde_json::to_string(&decoded).map_err(|error| error.to_string())
}

/// Passes already-encoded protobuf bytes through tonic unchanged.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = bytes::Bytes;
    type Decode = bytes::Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = bytes::Bytes;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Self::Item,
        buffer: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Self::Error> {
        bytes::BufMut::put(buffer, item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = bytes::Bytes;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        buffer: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Self::Item>, Self::Error> {
        let length = bytes::Buf::remaining(buffer);
        Ok(Some(bytes::Buf::copy_to_bytes(buffer, length)))
    }
}
