//! What no caller may exceed, so that none can exhaust the backbone: the
//! size of a request, the length of every text field and the number of
//! items in every repeated field (checked for any request through the
//! contract's descriptors, naming the field and the limit), and how many
//! streams a connection may open; how long a request may take and how many
//! a connection may have in flight are settings (`request_timeout_seconds`,
//! `requests_per_connection`). Handlers take their request through
//! [`checked`], which also establishes who is calling.

use std::sync::OnceLock;

use prost::{Message, Name};
use prost_reflect::{DescriptorPool, DynamicMessage, Value};
use tonic::{Request, Status};
use trust::Caller;

use crate::reject::invalid;

/// The largest request a service decodes; tonic refuses a larger one
/// (OUT_OF_RANGE, naming the size and the limit) before it is read.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Free text: concerns, rationale, notes, reasons.
pub const MAX_FREE_TEXT_BYTES: usize = 10_000;
/// Every other text field: names, identifiers, codes, numbers, purposes.
pub const MAX_TEXT_BYTES: usize = 256;
/// Every repeated field: invitees, agencies, kinds, risk factors.
pub const MAX_ITEMS: usize = 50;
/// HTTP/2 streams one connection may have open at once.
pub const STREAMS_PER_CONNECTION: u32 = 128;

/// The fields whose values are free text, whatever message they are in.
const FREE_TEXT: &[&str] = &[
    "concerns",
    "rationale",
    "notes",
    "reason",
    "quorum_override_reason",
    // A chunk of a caseload file (`ImportCaseload`).
    "csv",
];

fn pool() -> Result<&'static DescriptorPool, Status> {
    static POOL: OnceLock<Option<DescriptorPool>> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(contract::FILE_DESCRIPTOR_SET).ok())
        .as_ref()
        .ok_or_else(|| crate::reject::internal("reading the contract", "no descriptors"))
}

/// Refuses `message` if any text or repeated field in it, at any depth, is
/// longer than its limit: INVALID_ARGUMENT naming the field and the limit.
pub fn check<M: Message + Name>(message: &M) -> Result<(), Status> {
    let descriptor = pool()?
        .get_message_by_name(&M::full_name())
        .ok_or_else(|| crate::reject::internal("checking a request", M::full_name()))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(|error| crate::reject::internal("checking a request", error))?;
    check_message(&dynamic, "")
}

fn check_message(message: &DynamicMessage, prefix: &str) -> Result<(), Status> {
    for (field, value) in message.fields() {
        let path = format!("{prefix}{}", field.name());
        match value {
            Value::List(items) => {
                if items.len() > MAX_ITEMS {
                    return Err(invalid(
                        &path,
                        format!("at most {MAX_ITEMS} items, not {}", items.len()),
                    ));
                }
                for (index, item) in items.iter().enumerate() {
                    check_value(item, &format!("{path}[{index}]"), field.name())?;
                }
            }
            value => check_value(value, &path, field.name())?,
        }
    }
    Ok(())
}

fn check_value(value: &Value, path: &str, name: &str) -> Result<(), Status> {
    match value {
        Value::String(text) => {
            let limit = if FREE_TEXT.contains(&name) {
                MAX_FREE_TEXT_BYTES
            } else {
                MAX_TEXT_BYTES
            };
            if text.len() > limit {
                return Err(invalid(
                    path,
                    format!("at most {limit} bytes, not {}", text.len()),
                ));
            }
            Ok(())
        }
        Value::Message(inner) => check_message(inner, &format!("{path}.")),
        _ => Ok(()),
    }
}

/// The request's verified caller and its message, once every field is
/// within its limit: how each handler takes its request.
pub fn checked<M: Message + Name>(request: Request<M>) -> Result<(Caller, M), Status> {
    let caller = Caller::of(&request)?;
    check(request.get_ref())?;
    Ok((caller, request.into_inner()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::referral::v1 as referral;

    #[test]
    fn every_text_and_repeated_field_is_held_to_its_limit_by_name() {
        let within = referral::RecordStrategyDiscussionRequest {
            referral_id: "r".repeat(MAX_TEXT_BYTES),
            notes: "n".repeat(MAX_FREE_TEXT_BYTES),
            agencies_present: vec![contract::common::v1::Organisation::default(); MAX_ITEMS],
            ..Default::default()
        };
        assert!(check(&within).is_ok());
        let cases = [
            (
                referral::RecordStrategyDiscussionRequest {
                    notes: "n".repeat(MAX_FREE_TEXT_BYTES + 1),
                    ..within.clone()
                },
                "notes: at most 10000 bytes, not 10001",
            ),
            (
                referral::RecordStrategyDiscussionRequest {
                    referral_id: "r".repeat(MAX_TEXT_BYTES + 1),
                    ..within.clone()
                },
                "referral_id: at most 256 bytes, not 257",
            ),
            (
                referral::RecordStrategyDiscussionRequest {
                    agencies_present: vec![
                        contract::common::v1::Organisation::default();
                        MAX_ITEMS + 1
                    ],
                    ..within.clone()
                },
                "agencies_present: at most 50 items, not 51",
            ),
            (
                referral::RecordStrategyDiscussionRequest {
                    agencies_present: vec![contract::common::v1::Organisation {
                        name: "x".repeat(300),
                        ..Default::default()
                    }],
                    ..within.clone()
                },
                "agencies_present[0].name: at most 256 bytes, not 300",
            ),
        ];
        for (request, says) in cases {
            let refused = check(&request).expect_err(says);
            assert_eq!(refused.code(), tonic::Code::InvalidArgument);
            assert_eq!(refused.message(), says);
        }
    }
}
