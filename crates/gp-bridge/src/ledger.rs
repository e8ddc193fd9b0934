//! The bridge's delivery ledger, on disk (sled): for each notification,
//! whether a message is being sent (so a restart knows the outcome is in
//! doubt and asks MESH before sending again) or was accepted, with MESH's
//! id; and each practice's answer when it comes. Written and flushed before
//! the bridge moves on, so a kill -9 loses nothing the ledger said.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Where one notification's message stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Delivery {
    /// About to be sent: if the bridge stops now, MESH may or may not have
    /// it.
    Sending,
    /// MESH accepted it.
    Accepted { message_id: String },
    /// The practice's system answered (an ITK3 business or infrastructure
    /// acknowledgement), or MESH reported it undeliverable.
    Answered {
        message_id: String,
        /// The ITK3 response code (`ok`, `transient-error`, `fatal-error`),
        /// or `undeliverable` from a MESH error report.
        outcome: String,
    },
}

/// The ledger: one tree, keyed by the MESH local id (the notification's
/// id).
#[derive(Debug, Clone)]
pub struct Ledger {
    db: sled::Db,
}

impl Ledger {
    pub fn open(dir: &Path) -> Result<Ledger, String> {
        let db = sled::open(dir.join("deliveries"))
            .map_err(|error| format!("{}: {error}", dir.display()))?;
        Ok(Ledger { db })
    }

    pub fn get(&self, local_id: &str) -> Result<Option<Delivery>, String> {
        self.db
            .get(local_id)
            .map_err(|error| error.to_string())?
            .map(|bytes| serde_json::from_slice(&bytes).map_err(|error| error.to_string()))
            .transpose()
    }

    /// Records `delivery` and waits until it is on disk.
    pub async fn put(&self, local_id: &str, delivery: &Delivery) -> Result<(), String> {
        let bytes = serde_json::to_vec(delivery).map_err(|error| error.to_string())?;
        self.db
            .insert(local_id, bytes)
            .map_err(|error| error.to_string())?;
        self.db
            .flush_async()
            .await
            .map(drop)
            .map_err(|error| error.to_string())
    }

    /// Every notification the ledger holds, with where it stands.
    pub fn all(&self) -> Vec<(String, Delivery)> {
        self.db
            .iter()
            .flatten()
            .filter_map(|(key, value)| {
                Some((
                    String::from_utf8(key.to_vec()).ok()?,
                    serde_json::from_slice(&value).ok()?,
                ))
            })
            .collect()
    }

    /// How many notifications are in each state: (sending, accepted,
    /// answered).
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for (_, value) in self.db.iter().flatten() {
            match serde_json::from_slice::<Delivery>(&value) {
                Ok(Delivery::Sending) => counts.0 += 1,
                Ok(Delivery::Accepted { .. }) => counts.1 += 1,
                Ok(Delivery::Answered { .. }) => counts.2 += 1,
                Err(_) => {}
            }
        }
        counts
    }
}
