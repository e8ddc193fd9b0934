//! Who may call each RPC, in one table: for every method of the contract,
//! the roles allowed and the relationship their organisation must have to
//! what is asked about (the local authority that owns it, the referrer, an
//! invitee, the recipient, the police in a joint enquiry). Every handler asks
//! [`allow`] before it reads or writes anything about a child; what an
//! answer may show each caller (a plan's category, other callers' names,
//! silent and point-in-time lookups) is decided here too. The access matrix
//! in `docs/access.md` is generated from this table (`safeguard policy`) and
//! a test keeps the two the same. Services reach it as
//! `service_core::policy`; it lives here so that every server, the bus's
//! `ReadEvents` included, asks the same table.

use contract::common::v1::Role;
use tonic::Status;

use crate::caller::role_name;
use crate::{Caller, Peer};

/// What the caller's organisation must be to the thing asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// Nothing: anyone in the roles may (a referral, a lookup).
    Anyone,
    /// The local authority that owns the referral, conference or plan (or
    /// that a new one, or a list, names).
    OwningLocalAuthority,
    /// The organisation that made the referral.
    Referrer,
    /// An organisation invited to the conference: for its own invitation.
    Invitee,
    /// The organisation the notifications are for.
    Recipient,
    /// A police force that took part in a strategy discussion deciding on a
    /// joint section 47 enquiry about the child.
    JointEnquiry,
}

impl Relation {
    fn describe(self) -> &'static str {
        match self {
            Relation::Anyone => "any organisation",
            Relation::OwningLocalAuthority => "the local authority that owns it",
            Relation::Referrer => "the organisation that referred",
            Relation::Invitee => "an invitee, for its own invitation",
            Relation::Recipient => "the organisation the notifications are for",
            Relation::JointEnquiry => "police in the child's joint section 47 enquiry",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Relation::Anyone => "any",
            Relation::OwningLocalAuthority => "owner",
            Relation::Referrer => "referrer",
            Relation::Invitee => "invitee",
            Relation::Recipient => "recipient",
            Relation::JointEnquiry => "joint s47",
        }
    }
}

/// Roles in the relationship `relation` may call.
#[derive(Debug, Clone, Copy)]
pub struct Grant {
    pub roles: &'static [Role],
    pub relation: Relation,
}

/// Who may call one RPC.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// `<package>.<Service>/<Method>`, as on the wire.
    pub rpc: &'static str,
    /// People, by role and relationship; empty for RPCs no person calls.
    pub grants: &'static [Grant],
    /// Whether the backbone's own services (by their certificates) may.
    pub services: bool,
    /// Why, for the matrix.
    pub note: &'static str,
}

/// Local authority children's social care.
pub const LOCAL_AUTHORITY: &[Role] = &[
    Role::SocialWorker,
    Role::TeamManager,
    Role::MashOfficer,
    Role::ConferenceChair,
];
/// The chair of a child protection conference.
pub const CHAIR: &[Role] = &[Role::ConferenceChair];
pub const POLICE: &[Role] = &[Role::PoliceOfficer];
pub const OPERATORS: &[Role] = &[Role::Operator];
/// Every professional: not the public, not the people who run the backbone.
pub const PROFESSIONALS: &[Role] = &[
    Role::SocialWorker,
    Role::TeamManager,
    Role::MashOfficer,
    Role::ConferenceChair,
    Role::PoliceOfficer,
    Role::UnscheduledCareClinician,
    Role::GeneralPractitioner,
    Role::HealthVisitor,
    Role::SchoolNurse,
    Role::Paediatrician,
    Role::Midwife,
    Role::CamhsClinician,
    Role::NamedSafeguardingProfessional,
    Role::DesignatedSafeguardingLead,
    Role::OtherProfessional,
];
/// Anyone who may refer a child: every professional and the public.
pub const EVERYONE_WHO_REFERS: &[Role] = &{
    let mut everyone = [Role::MemberOfPublic; PROFESSIONALS.len() + 1];
    let mut index = 0;
    while index < PROFESSIONALS.len() {
        everyone[index] = PROFESSIONALS[index];
        index += 1;
    }
    everyone
};

const fn grant(roles: &'static [Role], relation: Relation) -> Grant {
    Grant { roles, relation }
}

const OWNER: &[Grant] = &[grant(LOCAL_AUTHORITY, Relation::OwningLocalAuthority)];
const OWNER_OR_INVITEE: &[Grant] = &[
    grant(LOCAL_AUTHORITY, Relation::OwningLocalAuthority),
    grant(PROFESSIONALS, Relation::Invitee),
];

const fn people(rpc: &'static str, grants: &'static [Grant], note: &'static str) -> Rule {
    Rule {
        rpc,
        grants,
        services: false,
        note,
    }
}

/// Every RPC of the contract, and who may call it.
pub const RULES: &[Rule] = &[
    people(
        "safeguard.referral.v1.ReferralIntake/SubmitReferral",
        &[grant(EVERYONE_WHO_REFERS, Relation::Anyone)],
        "anyone may refer a child, the public included",
    ),
    people(
        "safeguard.referral.v1.ReferralIntake/ShareInformation",
        &[grant(PROFESSIONALS, Relation::Anyone)],
        "a professional shares what they know without referring (the public refers)",
    ),
    people(
        "safeguard.referral.v1.ReferralIntake/RecordDomesticAbuseIncident",
        &[grant(POLICE, Relation::Anyone)],
        "Operation Encompass: the police report a domestic abuse incident, and the school is told",
    ),
    people(
        "safeguard.referral.v1.ReferralIntake/RecordDecision",
        OWNER,
        "the front door (MASH) of the council referred to decides",
    ),
    people(
        "safeguard.referral.v1.ReferralIntake/RecordStrategyDiscussion",
        OWNER,
        "the owning council records what the agencies agreed",
    ),
    people(
        "safeguard.referral.v1.ReferralIntake/RecordSection47Outcome",
        OWNER,
        "the owning council concludes its enquiry",
    ),
    people(
        "safeguard.referral.v1.ReferralIntake/RecordAssessmentCompleted",
        OWNER,
        "the owning council's social workers complete their assessment",
    ),
    people(
        "safeguard.referral.v1.ReferralIntake/GetReferral",
        &[
            grant(LOCAL_AUTHORITY, Relation::OwningLocalAuthority),
            grant(PROFESSIONALS, Relation::Referrer),
            grant(POLICE, Relation::JointEnquiry),
        ],
        "the owning council; the referrer sees its own referral and its outcome",
    ),
    people(
        "safeguard.referral.v1.ReferralIntake/ListAwaitingDecision",
        OWNER,
        "a council's own front-door queue",
    ),
    people(
        "safeguard.conference.v1.ConferenceScheduler/CreateConference",
        OWNER,
        "a council convenes its own conferences",
    ),
    people(
        "safeguard.conference.v1.ConferenceScheduler/ScheduleConference",
        OWNER,
        "",
    ),
    people(
        "safeguard.conference.v1.ConferenceScheduler/RearrangeConference",
        OWNER,
        "",
    ),
    people(
        "safeguard.conference.v1.ConferenceScheduler/CancelConference",
        OWNER,
        "",
    ),
    people(
        "safeguard.conference.v1.ConferenceScheduler/UpdateInvitations",
        OWNER,
        "",
    ),
    people(
        "safeguard.conference.v1.ConferenceScheduler/RecordInviteReply",
        OWNER_OR_INVITEE,
        "an invited agency replies for its own invitation",
    ),
    people(
        "safeguard.conference.v1.ConferenceScheduler/RecordReportReceived",
        OWNER_OR_INVITEE,
        "an invited agency sends its report for its own invitation",
    ),
    people(
        "safeguard.conference.v1.ConferenceScheduler/RecordAttendance",
        OWNER,
        "",
    ),
    people(
        "safeguard.conference.v1.ConferenceScheduler/RecordOutcome",
        &[grant(CHAIR, Relation::OwningLocalAuthority)],
        "the conference chair alone records the outcome (and overrides quorum)",
    ),
    people(
        "safeguard.conference.v1.ConferenceScheduler/RecordCoreGroupMeeting",
        OWNER,
        "the owning council records its plan's core group meeting",
    ),
    people(
        "safeguard.conference.v1.ConferenceScheduler/GetConference",
        OWNER_OR_INVITEE,
        "the owning council; an invitee sees the conference it is invited to",
    ),
    people(
        "safeguard.conference.v1.ConferenceScheduler/ListConferences",
        OWNER,
        "a council's own conferences",
    ),
    people(
        "safeguard.registry.v1.PlanRegistry/LookupChild",
        &[grant(PROFESSIONALS, Relation::Anyone)],
        "any professional: on a plan, which type, since when, whom to call",
    ),
    people(
        "safeguard.registry.v1.PlanRegistry/ChildChronology",
        &[
            grant(LOCAL_AUTHORITY, Relation::OwningLocalAuthority),
            grant(POLICE, Relation::JointEnquiry),
        ],
        "the council that owns the child's plan or referral; police in its joint section 47 enquiry",
    ),
    people(
        "safeguard.registry.v1.PlanRegistry/ListAccesses",
        OWNER,
        "a council asks who read its children's records, and why",
    ),
    people(
        "safeguard.registry.v1.PlanRegistry/RecordTransferIn",
        OWNER,
        "",
    ),
    people(
        "safeguard.registry.v1.PlanRegistry/RecordLookedAfter",
        OWNER,
        "",
    ),
    people(
        "safeguard.registry.v1.PlanRegistry/RecordUnbornPlan",
        OWNER,
        "",
    ),
    people("safeguard.registry.v1.PlanRegistry/LinkBirth", OWNER, ""),
    people(
        "safeguard.registry.v1.PlanRegistry/LinkNhsNumber",
        OWNER,
        "the council that issued a local identifier matches it to an NHS number",
    ),
    people(
        "safeguard.registry.v1.PlanRegistry/ImportCaseload",
        OWNER,
        "a council loads its own caseload at go-live",
    ),
    people(
        "safeguard.registry.v1.PlanRegistry/ListUnmatchedChildren",
        OWNER,
        "a council lists its own children not yet matched, and its match rate",
    ),
    people(
        "safeguard.registry.v1.PlanRegistry/EndPlan",
        OWNER,
        "a council ends its own plans",
    ),
    people(
        "safeguard.registry.v1.PlanRegistry/AllocateLeadSocialWorker",
        OWNER,
        "the owning council allocates its plans' social workers",
    ),
    people(
        "safeguard.registry.v1.PlanRegistry/SetLocalAuthorityContacts",
        OWNER,
        "a council sets its own numbers",
    ),
    people(
        "safeguard.notification.v1.Notification/Subscribe",
        &[grant(PROFESSIONALS, Relation::Recipient)],
        "an organisation reads its own notifications",
    ),
    people(
        "safeguard.notification.v1.Notification/Acknowledge",
        &[grant(PROFESSIONALS, Relation::Recipient)],
        "",
    ),
    Rule {
        rpc: "safeguard.events.v1.EventLogReader/ReadEvents",
        grants: &[],
        services: true,
        note: "whole events about any child: the backbone's own services only",
    },
    Rule {
        rpc: "safeguard.events.v1.ServiceStatus/GetStatus",
        grants: &[grant(OPERATORS, Relation::Anyone)],
        services: true,
        note: "what stopped and what was set aside: operators, who see no child's data otherwise",
    },
];

/// The rule for `rpc`; an RPC without one is refused (a test checks that
/// every method of the contract has one).
pub fn rule(rpc: &str) -> Option<&'static Rule> {
    RULES.iter().find(|rule| rule.rpc == rpc)
}

/// The police forces at strategy discussions that decided on a joint
/// section 47 enquiry: the forces in the child's joint enquiry.
pub fn joint_enquiry_police<'a>(
    discussions: impl IntoIterator<Item = &'a contract::referral::v1::StrategyDiscussion>,
) -> impl Iterator<Item = String> {
    discussions
        .into_iter()
        .filter(|discussion| discussion.section_47_enquiry)
        .flat_map(|discussion| &discussion.agencies_present)
        .filter(|agency| agency.kind == i32::from(contract::common::v1::OrganisationKind::Police))
        .map(|agency| agency.ods_code.clone())
}

/// Who the thing asked about belongs to and who else it concerns, as
/// ODS codes: what a handler knows once it has found it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parties {
    pub owners: Vec<String>,
    pub referrer: Option<String>,
    pub invitees: Vec<String>,
    pub recipient: Option<String>,
    pub joint_enquiry: Vec<String>,
}

impl Parties {
    /// Owned by `owner`.
    pub fn owned_by(owner: impl Into<String>) -> Parties {
        Parties {
            owners: vec![owner.into()],
            ..Parties::default()
        }
    }

    /// For `recipient`.
    pub fn for_recipient(recipient: impl Into<String>) -> Parties {
        Parties {
            recipient: Some(recipient.into()),
            ..Parties::default()
        }
    }

    fn relate(&self, relation: Relation, ods: &str) -> bool {
        match relation {
            Relation::Anyone => true,
            Relation::OwningLocalAuthority => self.owners.iter().any(|owner| owner == ods),
            Relation::Referrer => self.referrer.as_deref() == Some(ods),
            Relation::Invitee => self.invitees.iter().any(|invitee| invitee == ods),
            Relation::Recipient => self.recipient.as_deref() == Some(ods),
            Relation::JointEnquiry => self.joint_enquiry.iter().any(|police| police == ods),
        }
    }
}

fn method(rpc: &str) -> &str {
    rpc.rsplit_once('/').map_or(rpc, |(_, method)| method)
}

fn roles_text(roles: &[Role]) -> String {
    match roles {
        roles if roles == PROFESSIONALS => "a professional role".to_owned(),
        roles if roles == EVERYONE_WHO_REFERS => "anyone".to_owned(),
        roles if roles == LOCAL_AUTHORITY => "a local authority social care role".to_owned(),
        roles => roles
            .iter()
            .map(|role| role_name(*role))
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

/// Why `rpc` is refused: the rule, never the data.
fn refusal(rule: &Rule) -> Status {
    let who = rule
        .grants
        .iter()
        .map(|grant| match grant.relation {
            Relation::Anyone => roles_text(grant.roles),
            relation => format!("{} as {}", roles_text(grant.roles), relation.describe()),
        })
        .chain(
            rule.services
                .then(|| "the backbone's own services".to_owned()),
        )
        .collect::<Vec<_>>()
        .join("; or ");
    Status::permission_denied(format!("{}: only {who}", method(rule.rpc)))
}

fn unknown(rpc: &str) -> Status {
    Status::permission_denied(format!("{}: no rule allows it", method(rpc)))
}

/// Whether `caller`'s role could call `rpc` in some relationship: asked
/// before anything is looked up, so a role that may never call learns
/// nothing, not even whether the thing exists.
pub fn allow_role(rpc: &str, caller: &Caller) -> Result<(), Status> {
    let rule = rule(rpc).ok_or_else(|| unknown(rpc))?;
    if rule
        .grants
        .iter()
        .any(|grant| grant.roles.contains(&caller.role))
    {
        Ok(())
    } else {
        Err(refusal(rule))
    }
}

/// Whether `caller` may call `rpc` about what `parties` describe.
pub fn allow(rpc: &str, caller: &Caller, parties: &Parties) -> Result<(), Status> {
    let rule = rule(rpc).ok_or_else(|| unknown(rpc))?;
    let ods = caller.organisation.as_str();
    if rule
        .grants
        .iter()
        .any(|grant| grant.roles.contains(&caller.role) && parties.relate(grant.relation, ods))
    {
        Ok(())
    } else {
        Err(refusal(rule))
    }
}

/// Whether a backbone service (by its certificate) may call `rpc`.
pub fn allow_service(rpc: &str) -> Result<(), Status> {
    match rule(rpc) {
        Some(rule) if rule.services => Ok(()),
        Some(rule) => Err(refusal(rule)),
        None => Err(unknown(rpc)),
    }
}

/// For an RPC about no particular child (a log, a service's status): a
/// service by its certificate where the rule lets services, else a person
/// whose role the rule lets in.
pub fn allow_request<T>(rpc: &str, request: &tonic::Request<T>) -> Result<(), Status> {
    match Peer::of(request)? {
        Peer::Service(_) => allow_service(rpc),
        Peer::Organisation(_) => allow(rpc, &Caller::of(request)?, &Parties::default()),
    }
}

/// Who sees the category of a plan: those who act on it. An emergency
/// department needs to know there is a plan and whom to call, not why.
pub const SEES_CATEGORY: &[Role] = &[
    Role::SocialWorker,
    Role::TeamManager,
    Role::MashOfficer,
    Role::ConferenceChair,
    Role::PoliceOfficer,
    Role::GeneralPractitioner,
    Role::Paediatrician,
    Role::NamedSafeguardingProfessional,
];

/// Who may look a child up without the owning council being told
/// (investigations that must not alert anyone), and ask what the record
/// said on a past date.
pub const LOOKS_UP_SILENTLY_OR_AS_OF: &[Role] = &[
    Role::SocialWorker,
    Role::TeamManager,
    Role::MashOfficer,
    Role::ConferenceChair,
    Role::PoliceOfficer,
    Role::NamedSafeguardingProfessional,
];

pub fn sees_category(caller: &Caller) -> bool {
    SEES_CATEGORY.contains(&caller.role)
}

/// A silent or point-in-time lookup by a role not entitled to one.
pub fn allow_lookup_options(caller: &Caller, silent: bool, as_of: bool) -> Result<(), Status> {
    let entitled = LOOKS_UP_SILENTLY_OR_AS_OF.contains(&caller.role);
    let (field, what) = match (silent, as_of) {
        (true, _) if !entitled => ("silent", "a silent lookup"),
        (_, true) if !entitled => ("as_of", "a point-in-time lookup"),
        _ => return Ok(()),
    };
    Err(Status::permission_denied(format!(
        "{field}: {what} is for {} only",
        roles_text(LOOKS_UP_SILENTLY_OR_AS_OF)
    )))
}

/// The access matrix: every RPC, every role, the relationship in which the
/// role may call it. Written to `docs/access.md`.
pub fn matrix() -> String {
    let roles: Vec<Role> = (1..)
        .map_while(|value| Role::try_from(value).ok())
        .collect();
    let mut text = String::from(
        "# Who may call what\n\n\
         Generated from `crates/trust/src/policy.rs` by `safeguard policy`; a test \
         fails if this file and the policy differ. Each cell is the relationship the \
         caller's organisation must have to what is asked about: `owner` the local \
         authority that owns the referral, conference or plan (or that a new one or a \
         list names), `referrer` the organisation that referred, `invitee` an \
         organisation invited to the conference (its own invitation), `recipient` the \
         organisation the notifications are for, `joint s47` police in the child's joint \
         section 47 enquiry, `any` no relationship. A blank cell: never. Every call is \
         also authenticated first: a trusted client certificate and, for a person, a \
         valid access token of the same organisation (`UNAUTHENTICATED` otherwise). \
         gRPC health is open to probes; reflection to any trusted certificate.\n\n",
    );
    text.push_str("| RPC |");
    for role in &roles {
        text.push_str(&format!(" {} |", role_name(*role)));
    }
    text.push_str(" services | why |\n|---|");
    for _ in &roles {
        text.push_str("---|");
    }
    text.push_str("---|---|\n");
    for rule in RULES {
        text.push_str(&format!("| `{}` |", method(rule.rpc)));
        for role in &roles {
            let cell = rule
                .grants
                .iter()
                .filter(|grant| grant.roles.contains(role))
                .map(|grant| grant.relation.short())
                .collect::<Vec<_>>()
                .join(", ");
            text.push_str(&format!(" {cell} |"));
        }
        text.push_str(&format!(
            " {} | {} |\n",
            if rule.services { "yes" } else { "" },
            rule.note
        ));
    }
    text.push_str(&format!(
        "\n## What an answer shows\n\n\
         - A plan's category: {} only; others see that there is a plan, its type, since \
         when and whom to call.\n\
         - A silent lookup (the owning council is not told) and a lookup as of a past \
         date: {} only.\n\
         - The list of who looked a child up: the owning local authority sees each \
         person's name; everyone else sees the organisation, role and time of each \
         access, and names only for their own organisation's.\n\
         - A chronology: the owning local authority, and police in the child's joint \
         section 47 enquiry.\n",
        roles_text(SEES_CATEGORY),
        roles_text(LOOKS_UP_SILENTLY_OR_AS_OF),
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_reflect::DescriptorPool;

    #[test]
    fn every_method_of_the_contract_has_exactly_one_rule() {
        let pool = DescriptorPool::decode(contract::FILE_DESCRIPTOR_SET).expect("descriptors");
        let mut methods = Vec::new();
        for service in pool.services() {
            for method in service.methods() {
                methods.push(format!("{}/{}", service.full_name(), method.name()));
            }
        }
        for method in &methods {
            assert_eq!(
                RULES.iter().filter(|rule| rule.rpc == method).count(),
                1,
                "{method}"
            );
        }
        for rule in RULES {
            assert!(
                methods.iter().any(|method| method == rule.rpc),
                "{}",
                rule.rpc
            );
        }
    }

    #[test]
    fn the_access_matrix_in_the_docs_is_the_policy() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/access.md");
        let written = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            written == matrix(),
            "docs/access.md differs from the policy: run `cargo run -p safeguard -- policy > docs/access.md`"
        );
    }
}
