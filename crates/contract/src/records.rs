//! Each producer's events as one enum, decoded once from the envelope: a
//! consumer matches on the variant instead of comparing content types, and
//! a record that does not decode is told apart from one this build does not
//! know (a newer build wrote it).

use crate::events::v1::{AccessRefused, EventEnvelope, RecordQuarantined, RecordsRead};
use crate::{conference, notification, referral, registry};

/// Why a record's payload is not what its content type says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable {
    pub content_type: String,
    pub reason: String,
}

impl std::fmt::Display for Undecodable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} does not decode: {}", self.content_type, self.reason)
    }
}

impl std::error::Error for Undecodable {}

/// A producer's events, decoded from their envelopes.
pub trait Records: Sized + Send {
    /// The event an envelope carries: `Ok(None)` for a content type this
    /// build does not know.
    fn decode(envelope: &EventEnvelope) -> Result<Option<Self>, Undecodable>;
}

/// Whether `content_type` is the full protobuf name of `M`, without
/// building that name.
pub fn is<M: prost::Name>(content_type: &str) -> bool {
    content_type
        .strip_prefix(M::PACKAGE)
        .and_then(|rest| rest.strip_prefix('.'))
        == Some(M::NAME)
}

macro_rules! records {
    ($(#[$doc:meta])* $name:ident { $($variant:ident($message:ty),)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq)]
        pub enum $name {
            $($variant($message),)*
        }

        impl Records for $name {
            fn decode(envelope: &EventEnvelope) -> Result<Option<Self>, Undecodable> {
                let content_type = envelope.content_type.as_str();
                $(
                    if is::<$message>(content_type) {
                        return <$message as prost::Message>::decode(envelope.payload.as_slice())
                            .map(|event| Some($name::$variant(event)))
                            .map_err(|error| Undecodable {
                                content_type: content_type.to_owned(),
                                reason: error.to_string(),
                            });
                    }
                )*
                Ok(None)
            }
        }

        impl $name {
            /// The content type the event is stored under.
            pub fn content_type(&self) -> String {
                match self {
                    $($name::$variant(_) => <$message as prost::Name>::full_name(),)*
                }
            }

            /// The payload as stored.
            pub fn encode(&self) -> Vec<u8> {
                match self {
                    $($name::$variant(event) => prost::Message::encode_to_vec(event),)*
                }
            }
        }

        $(
            impl From<$message> for $name {
                fn from(event: $message) -> Self {
                    $name::$variant(event)
                }
            }
        )*
    };
}

records! {
    /// What `referral-intake` writes: one referral's life at the front door.
    ReferralEvent {
        Submitted(referral::v1::ReferralSubmitted),
        Decided(referral::v1::ReferralDecided),
        StrategyDiscussionHeld(referral::v1::StrategyDiscussionHeld),
        Section47Concluded(referral::v1::Section47Concluded),
        AssessmentCompleted(referral::v1::AssessmentCompleted),
        InformationShared(referral::v1::InformationShared),
        DomesticAbuseIncidentReported(referral::v1::DomesticAbuseIncidentReported),
        Quarantined(RecordQuarantined),
        RecordsRead(RecordsRead),
        AccessRefused(AccessRefused),
    }
}

records! {
    /// What `conference-scheduler` writes: each conference from its request
    /// to its outcome.
    ConferenceEvent {
        Requested(conference::v1::ConferenceRequested),
        Scheduled(conference::v1::ConferenceScheduled),
        Rearranged(conference::v1::ConferenceRearranged),
        Cancelled(conference::v1::ConferenceCancelled),
        InvitationsUpdated(conference::v1::InvitationsUpdated),
        InviteReplied(conference::v1::InviteReplied),
        ReportReceived(conference::v1::ReportReceived),
        AttendanceRecorded(conference::v1::AttendanceRecorded),
        OutcomeRecorded(conference::v1::ConferenceOutcomeRecorded),
        CoreGroupMet(conference::v1::CoreGroupMet),
        Quarantined(RecordQuarantined),
        RecordsRead(RecordsRead),
        AccessRefused(AccessRefused),
    }
}

records! {
    /// What a `plan-registry` pod writes: plans (the primary only), lookups
    /// and local authorities' contact numbers.
    RegistryEvent {
        PlanStarted(registry::v1::PlanStarted),
        PlanCategoryChanged(registry::v1::PlanCategoryChanged),
        PlanEnded(registry::v1::PlanEnded),
        BirthLinked(registry::v1::BirthLinked),
        LeadSocialWorkerAllocated(registry::v1::LeadSocialWorkerAllocated),
        NhsNumberLinked(registry::v1::ChildNhsNumberLinked),
        ChildLookedUp(registry::v1::ChildLookedUp),
        ContactsSet(registry::v1::LocalAuthorityContactsSet),
        Quarantined(RecordQuarantined),
        RecordsRead(RecordsRead),
        AccessRefused(AccessRefused),
    }
}

records! {
    /// What `notification` writes: what each recipient is told, and how far
    /// each subscriber has acknowledged.
    NotificationEvent {
        Raised(notification::v1::NotificationRaised),
        Acknowledged(notification::v1::SubscriberAcknowledged),
        Quarantined(RecordQuarantined),
        RecordsRead(RecordsRead),
        AccessRefused(AccessRefused),
    }
}

/// Any producer's events: what a consumer of several producers (the
/// registry's chronology, notification) receives.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyEvent {
    /// Boxed: a submission is far larger than any other event.
    Referral(Box<ReferralEvent>),
    Conference(ConferenceEvent),
    Registry(RegistryEvent),
    Notification(NotificationEvent),
    /// A read of children's records, whichever service recorded it: what
    /// the owning councils' access reports are made of.
    RecordsRead(RecordsRead),
}

impl Records for AnyEvent {
    fn decode(envelope: &EventEnvelope) -> Result<Option<Self>, Undecodable> {
        let package = envelope
            .content_type
            .rsplit_once('.')
            .map_or("", |(package, _)| package);
        Ok(match package {
            "safeguard.referral.v1" => {
                ReferralEvent::decode(envelope)?.map(|event| AnyEvent::Referral(Box::new(event)))
            }
            "safeguard.conference.v1" => {
                ConferenceEvent::decode(envelope)?.map(AnyEvent::Conference)
            }
            "safeguard.registry.v1" => RegistryEvent::decode(envelope)?.map(AnyEvent::Registry),
            "safeguard.notification.v1" => {
                NotificationEvent::decode(envelope)?.map(AnyEvent::Notification)
            }
            "safeguard.events.v1" if is::<RecordsRead>(&envelope.content_type) => {
                Some(AnyEvent::RecordsRead(
                    <RecordsRead as prost::Message>::decode(envelope.payload.as_slice()).map_err(
                        |error| Undecodable {
                            content_type: envelope.content_type.clone(),
                            reason: error.to_string(),
                        },
                    )?,
                ))
            }
            // Quarantine records and refusals are each service's own business.
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Name;

    fn envelope(content_type: &str, payload: Vec<u8>) -> EventEnvelope {
        EventEnvelope {
            content_type: content_type.to_owned(),
            payload,
            ..EventEnvelope::default()
        }
    }

    #[test]
    fn a_record_decodes_to_its_variant_and_back() {
        let started = registry::v1::PlanStarted {
            plan_id: "p-1".into(),
            ..Default::default()
        };
        let event = RegistryEvent::from(started.clone());
        let stored = envelope(&event.content_type(), event.encode());
        assert_eq!(
            RegistryEvent::decode(&stored),
            Ok(Some(RegistryEvent::PlanStarted(started.clone())))
        );
        assert_eq!(
            AnyEvent::decode(&stored),
            Ok(Some(AnyEvent::Registry(RegistryEvent::PlanStarted(
                started
            ))))
        );
    }

    #[test]
    fn unknown_content_types_are_none_and_bad_payloads_are_errors() {
        let cases = [
            ("safeguard.registry.v1.PlanStartedX", vec![], Ok(None)),
            ("safeguard.registry.v1", vec![], Ok(None)),
            ("", vec![], Ok(None)),
            (
                "safeguard.registry.v1.PlanStarted",
                vec![0xff, 0xff],
                Err(()),
            ),
        ];
        for (content_type, payload, expected) in cases {
            let decoded = RegistryEvent::decode(&envelope(content_type, payload));
            assert_eq!(
                decoded
                    .map(|event| event.map(|e| e.content_type()))
                    .map_err(|_| ()),
                expected,
                "{content_type}"
            );
        }
    }

    #[test]
    fn content_types_are_matched_without_building_names() {
        assert!(is::<registry::v1::PlanEnded>(
            &registry::v1::PlanEnded::full_name()
        ));
        assert!(!is::<registry::v1::PlanEnded>("safeguard.registry.v1.Plan"));
        assert!(!is::<registry::v1::PlanEnded>(
            "safeguard.registry.v2.PlanEnded"
        ));
    }
}
