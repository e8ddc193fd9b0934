//! Building the events a service appends: the payload's protobuf name as
//! the content type, who caused it as the actor, and the trace of the
//! request (or rule) it came from.

use contract::events::v1::{Actor, actor::Kind};
use eventlog::NewEvent;
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
