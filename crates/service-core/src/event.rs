//! Building the events a service appends: the payload's protobuf name as
//! the content type, who caused it as the actor, and the trace of the
//! request (or rule) it came from.

use contract::events::v1::{Actor, EventEnvelope, actor::Kind};
use eventlog::{EventId, NewEvent};
use prost::{Message, Name};

use crate::Caller;

/// An event caused by a person through the API.
pub fn by_person<M: Message + Name>(payload: &M, caller: &Caller) -> NewEvent {
    with_actor(payload, Kind::Person(caller.to_wire()))
}

/// An event the service caused itself, by a rule.
pub fn by_system<M: Message + Name>(payload: &M, service: &str) -> NewEvent {
    with_actor(payload, Kind::System(service.to_owned()))
}

fn with_actor<M: Message + Name>(payload: &M, kind: Kind) -> NewEvent {
    NewEvent {
        actor: Some(Actor { kind: Some(kind) }),
        traceparent: crate::trace::current(),
        ..NewEvent::new(M::full_name(), payload.encode_to_vec())
    }
}

/// The events a rule derives from one event it follows (the *source*):
/// each one's id derives from the source's, so a redelivered source appends
/// nothing new; each is caused by the source, in its correlation, continues
/// its trace, and has the service as its actor.
#[derive(Debug, Clone, Copy)]
pub struct Derived<'a> {
    source: &'a EventEnvelope,
    source_id: EventId,
    service: &'a str,
    rule: &'static str,
    /// Whether the derived events occur when the source did, rather than
    /// when the rule derived them.
    at_source_time: bool,
}

impl<'a> Derived<'a> {
    /// What `rule` of `service` derives from `source`; refused if the
    /// source has no event id to derive from.
    pub fn from(
        source: &'a EventEnvelope,
        service: &'a str,
        rule: &'static str,
    ) -> Result<Self, String> {
        let source_id = EventId::from_slice(&source.event_id)
            .ok_or_else(|| "event_id: is not 16 bytes, so nothing can derive from it".to_owned())?;
        Ok(Derived {
            source,
            source_id,
            service,
            rule,
            at_source_time: false,
        })
    }

    /// The derived events occur when the source did: a plan starts when
    /// the conference decided it, however late the registry hears of it.
    pub fn occurring_with_source(mut self) -> Self {
        self.at_source_time = true;
        self
    }

    /// The id of the `index`-th event for `purpose`: what the payload may
    /// need to name before the event is built (a conference's id).
    pub fn id(&self, purpose: &str, index: u32) -> EventId {
        EventId::derived(self.source_id, purpose, index)
    }

    /// The `index`-th event for `purpose`, carrying `payload`.
    pub fn event<M: Message + Name>(&self, purpose: &str, index: u32, payload: &M) -> NewEvent {
        let built = by_system(payload, self.service);
        let occurred_at = self
            .source
            .occurred_at
            .filter(|_| self.at_source_time)
            .and_then(|at| std::time::SystemTime::try_from(at).ok())
            .unwrap_or(built.occurred_at);
        NewEvent {
            event_id: self.id(purpose, index),
            occurred_at,
            correlation_id: self.source.correlation_id.clone(),
            causation_id: self.source.event_id.clone(),
            traceparent: crate::trace::follow(&self.source.traceparent, self.rule),
            ..built
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_events_are_caused_by_their_source_and_occur_when_asked() {
        let source = EventEnvelope {
            event_id: EventId::new().as_bytes().to_vec(),
            correlation_id: b"case".to_vec(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            ..EventEnvelope::default()
        };
        let payload = contract::events::v1::RecordQuarantined::default();
        let derived = Derived::from(&source, "test", "test-rule").expect("derived");
        let now = derived.event("purpose", 0, &payload);
        let again = derived.event("purpose", 0, &payload);
        assert_eq!(now.event_id, again.event_id, "the same id every time");
        assert_ne!(now.event_id, derived.event("purpose", 1, &payload).event_id);
        assert_eq!(now.causation_id, source.event_id);
        assert_eq!(now.correlation_id, b"case");
        assert!(
            now.occurred_at
                > std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000)
        );
        let at_source = derived
            .occurring_with_source()
            .event("purpose", 0, &payload);
        assert_eq!(
            at_source.occurred_at,
            std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000)
        );
        assert!(Derived::from(&EventEnvelope::default(), "test", "rule").is_err());
    }
}
