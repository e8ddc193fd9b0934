//! The notification service's view of its own log: how far each
//! subscriber has acknowledged, so a subscription resumes after it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use contract::records::NotificationEvent;
use service_core::follow::Record;

/// Acknowledged sequence by (recipient ODS code, subscriber name).
pub(crate) type Acks = Arc<RwLock<HashMap<(String, String), u64>>>;

/// How far each subscriber has acknowledged: the highest sequence each
/// acknowledgement names.
pub(crate) fn apply_ack(
    acks: &mut HashMap<(String, String), u64>,
    _: Record<'_>,
    event: NotificationEvent,
) -> Result<(), String> {
    if let NotificationEvent::Acknowledged(ack) = event {
        let place = acks
            .entry((ack.recipient_ods_code, ack.subscriber))
            .or_default();
        *place = (*place).max(ack.sequence);
    }
    Ok(())
}
