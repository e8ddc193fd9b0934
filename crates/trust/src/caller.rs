//! The verified parties of a request: the system that connected (its
//! certificate) and the person acting through it (their token). Handlers
//! read them from the request; nothing in a request body can change them.

use contract::common::v1 as wire;
use domain::OdsCode;
use tonic::Status;

/// The party a client certificate names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// An agency's system, by the ODS code of its organisation.
    Organisation(OdsCode),
    /// One of the backbone's own services (a registry pod, a service
    /// repairing a gap in another's events).
    Service(String),
}

impl Peer {
    /// The peer the authentication layer established for this request.
    pub fn of<T>(request: &tonic::Request<T>) -> Result<&Peer, Status> {
        request
            .extensions()
            .get::<Peer>()
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))
    }
}

/// The person making a call, from their verified token and their system's
/// verified certificate: every read and write is attributed to one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub organisation: OdsCode,
    pub organisation_name: String,
    pub organisation_kind: wire::OrganisationKind,
    pub user_id: String,
    pub display_name: String,
    pub role: wire::Role,
    /// Where they are working: a request field where the RPC asks for it
    /// (a lookup from A&E), not part of who they are.
    pub care_setting: wire::CareSetting,
}

impl Caller {
    /// The person the authentication layer verified for this request.
    pub fn of<T>(request: &tonic::Request<T>) -> Result<Caller, Status> {
        Peer::of(request)?;
        request
            .extensions()
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| {
                Status::unauthenticated(
                    "a bearer access token (authorization: Bearer ...) is required",
                )
            })
    }

    /// The same caller, working in `setting` (a request field, where given).
    pub fn in_setting(mut self, setting: wire::CareSetting) -> Caller {
        self.care_setting = setting;
        self
    }

    /// The role as people write it: `UNSCHEDULED_CARE_CLINICIAN`.
    pub fn role_name(&self) -> &'static str {
        role_name(self.role)
    }

    /// Back to the wire, for the actor of the events it causes.
    pub fn to_wire(&self) -> wire::CallerIdentity {
        wire::CallerIdentity {
            organisation: Some(wire::Organisation {
                ods_code: self.organisation.to_string(),
                name: self.organisation_name.clone(),
                kind: self.organisation_kind.into(),
            }),
            user_id: self.user_id.clone(),
            display_name: self.display_name.clone(),
            role: self.role.into(),
            care_setting: self.care_setting.into(),
        }
    }
}

/// A role as people write it, without the protobuf prefix.
pub fn role_name(role: wire::Role) -> &'static str {
    let name = role.as_str_name();
    name.strip_prefix("ROLE_").unwrap_or(name)
}

/// The kind of organisation a role is held in: tokens name the
/// organisation and the role, and the role says which sector it is.
pub fn organisation_kind_of(role: wire::Role) -> wire::OrganisationKind {
    use wire::OrganisationKind as Kind;
    use wire::Role;
    match role {
        Role::SocialWorker | Role::TeamManager | Role::MashOfficer | Role::ConferenceChair => {
            Kind::LocalAuthority
        }
        Role::PoliceOfficer => Kind::Police,
        Role::GeneralPractitioner => Kind::GpPractice,
        Role::UnscheduledCareClinician
        | Role::HealthVisitor
        | Role::SchoolNurse
        | Role::Paediatrician
        | Role::Midwife
        | Role::CamhsClinician
        | Role::NamedSafeguardingProfessional => Kind::NhsTrust,
        Role::DesignatedSafeguardingLead => Kind::School,
        Role::OtherProfessional | Role::Operator => Kind::Other,
        Role::MemberOfPublic | Role::Unspecified => Kind::Unspecified,
    }
}
