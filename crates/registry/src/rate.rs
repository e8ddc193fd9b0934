//! How often one person may look children up: more than any emergency
//! department shift needs, far too few to walk the NHS number space. Each
//! person (organisation and user id, from their verified token) has a
//! bucket of `per_minute` lookups that refills at that rate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use tonic::Status;
use trust::Caller;

#[derive(Debug)]
pub(crate) struct LookupRate {
    per_minute: u32,
    buckets: Mutex<HashMap<(String, String), Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// How many people's buckets are kept before the idle ones are dropped.
const PEOPLE: usize = 100_000;

impl LookupRate {
    pub(crate) fn new(per_minute: u32) -> LookupRate {
        LookupRate {
            per_minute: per_minute.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one lookup from `caller`'s bucket, or says when to retry.
    pub(crate) fn take(&self, caller: &Caller) -> Result<(), Status> {
        let now = Instant::now();
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let mut buckets = self
            .buckets
            .lock()
            .map_err(|error| service_core::reject::internal("counting lookups", error))?;
        if buckets.len() >= PEOPLE {
            // A full bucket is one nobody used for a minute: forget it.
            buckets.retain(|_, bucket| now.duration_since(bucket.at).as_secs() < 60);
        }
        let bucket = buckets
            .entry((caller.organisation.to_string(), caller.user_id.clone()))
            .or_insert(Bucket {
                tokens: capacity,
                at: now,
            });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * per_second)
            .min(capacity);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            let wait = ((1.0 - bucket.tokens) / per_second).ceil();
            return Err(Status::resource_exhausted(format!(
                "LookupChild: at most {} lookups a minute by one person; retry in {wait} s",
                self.per_minute
            )));
        }
        bucket.tokens -= 1.0;
        Ok(())
    }
}
