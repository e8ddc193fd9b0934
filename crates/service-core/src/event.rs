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
        })
    }

    /// The id of the `index`-th event for `purpose`: what the payload may
    /// need to name before the event is built (a conference's id).
    pub fn id(&self, purpose: &str, index: u32) -> EventId {
        EventId::derived(self.source_id, purpose, index)
    }

    /// The `index`-th event for `purpose`, carrying `payload`.
    pub fn event<M: Message + Name>(&self, purpose: &str, index: u32, payload: &M) -> NewEvent {
        NewEvent {
            event_id: self.id(purpose, index),
            correlation_id: self.source.correlation_id.clone(),
            causation_id: self.source.event_id.clone(),
            traceparent: crate::trace::follow(&self.source.traceparent, self.rule),
            ..by_system(payload, self.service)
        }
    }
}
