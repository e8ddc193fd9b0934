//! The registry's views: every plan (current and past) by child, the last
//! accesses to each child's record, local authorities' contact numbers,
//! and the other services' events for each child's chronology. Plans,
//! accesses and contacts come from the registry's own log; the chronology
//! keeps only other producers' events, and reads the registry's own from
//! its log when asked.
//!
//! Held compactly, because a registry holds every child of a region: a
//! plan is a few numbers and indexes into values many plans share (the
//! local authority, the care team, the social worker), and an access is a
//! time and two such indexes (who looked, and why).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use contract::common::v1::{ContactDetails, Organisation};
use contract::events::v1::{RecordsRead, actor};
use contract::records::RegistryEvent;
use contract::registry::v1 as wire;
use domain::{ChildId, LocalChildId, NhsNumber};

use domain::plan::Plan;
use eventlog::EventId;
use prost::Message;
use service_core::follow::Record;
use service_core::validate;

use crate::chronology;
use crate::convert;

/// A time as microseconds since the epoch: how accesses and reads are kept.
pub fn micros(at: &prost_types::Timestamp) -> i64 {
    at.seconds * 1_000_000 + i64::from(at.nanos / 1_000)
}

/// The RPC a lookup is, in the access report.
const LOOKUP: &str = "safeguard.registry.v1.PlanRegistry/LookupChild";

/// How many accesses a lookup shows, as CP-IS does.
pub const RECENT_ACCESSES: usize = 25;

/// Values many records share, each held once and named by its index.
#[derive(Debug)]
pub struct Interned<T> {
    index: HashMap<Box<[u8]>, u32>,
    values: Vec<T>,
}

impl<T> Default for Interned<T> {
    fn default() -> Self {
        Interned {
            index: HashMap::new(),
            values: Vec::new(),
        }
    }
}

impl<T> Interned<T> {
    /// The index of the value whose identifying bytes are `key`, adding
    /// `make()` if it is new.
    pub fn intern(&mut self, key: &[u8], make: impl FnOnce() -> T) -> u32 {
        if let Some(index) = self.index.get(key) {
            return *index;
        }
        let index = self.values.len() as u32;
        self.values.push(make());
        self.index.insert(key.into(), index);
        index
    }

    pub fn get(&self, index: u32) -> &T {
        &self.values[index as usize]
    }
}

impl<T: Message + Clone> Interned<T> {
    pub fn intern_message(&mut self, value: &T) -> u32 {
        self.intern(&value.encode_to_vec(), || value.clone())
    }
}

/// One plan, as the registry keeps it.
#[derive(Debug, Clone)]
pub struct PlanRecord {
    pub id: Arc<str>,
    pub aggregate: Plan,
    /// The wire values of what the aggregate holds as domain values.
    pub wire_type: i32,
    pub wire_category: i32,
    pub wire_end_reason: i32,
    pub expected_date_of_delivery: Option<domain::date::Date>,
    pub local_authority: u32,
    pub lead_social_worker: Option<u32>,
    pub care_team: u32,
    pub version: u64,
    /// Made by a conference: a review conference decides its end.
    pub made_by_conference: bool,
    /// For a child held under a local identifier: their name as the
    /// conference knew it, for the council matching them to an NHS number.
    pub child_name: Option<Box<str>>,
}

/// One lookup of a child: when, who (an interned caller) and why (an
/// interned purpose).
#[derive(Debug, Clone, Copy)]
pub struct Access {
    pub at_micros: i64,
    pub who: u32,
    pub purpose: u32,
}

/// One read of children's records, kept for the access report of each
/// local authority that owns them: when, who, which RPC and why (all
/// interned), the children, and where the read is recorded.
#[derive(Debug, Clone)]
pub struct Read {
    pub at_micros: i64,
    pub reader: u32,
    pub rpc: u32,
    pub purpose: u32,
    pub log: u32,
    pub position: u64,
    pub children: Box<[NhsNumber]>,
}

/// What the registry knows of one child (an NHS number, or a local
/// identifier not yet linked to one).
#[derive(Debug, Default)]
pub struct Child {
    /// Plans held against the number: the child's, an unborn plan's
    /// mother's, and the baby's once linked.
    pub plans: Box<[u32]>,
    /// Newest first, at most `RECENT_ACCESSES`.
    pub accesses: Box<[Access]>,
}

#[derive(Debug, Default)]
pub struct Projection {
    plans: Vec<PlanRecord>,
    plan_index: HashMap<Arc<str>, u32>,
    children: HashMap<ChildId, Child>,
    pub organisations: Interned<Organisation>,
    pub care_teams: Interned<Vec<Organisation>>,
    pub social_workers: Interned<ContactDetails>,
    /// Who looked: the access with its time and purpose left out.
    pub callers: Interned<wire::Access>,
    pub purposes: Interned<String>,
    /// Who read, for the access report.
    pub readers: Interned<contract::common::v1::CallerIdentity>,
    /// Every read of each local authority's children's records: lookups
    /// on every pod, chronologies, referrals and conferences read.
    pub reads: HashMap<String, Vec<Read>>,
    pub contacts: HashMap<String, wire::LocalAuthorityContacts>,
    pub chronology: chronology::Chronology,
    /// On a read replica, the ids of the plan events it has applied, so it
    /// knows when an outcome's plan (whose id derives from the outcome) has
    /// reached it from the primary.
    plan_events: Option<HashSet<EventId>>,
    /// Children named by a record that could not be applied: their history
    /// is not whole, so no lookup may answer from it.
    unsure: HashMap<ChildId, Unsure>,
}

/// Why a child's record cannot be shown, and whom to call instead.
#[derive(Debug, Clone)]
pub struct Unsure {
    /// The first record about the child that could not be applied.
    pub producer: String,
    pub position: u64,
    /// The local authorities the unapplied records name.
    pub owners: Vec<Organisation>,
}

/// What a record names: the children, plan and local authority it is
/// about, read as far as it can be, for a record that cannot be applied.
fn named(event: &RegistryEvent) -> (Vec<ChildId>, Option<&Organisation>) {
    let one = |nhs, local| validate::stored_child(nhs, local).into_iter().collect();
    match event {
        RegistryEvent::PlanStarted(started) => (
            one(
                started.child_nhs_number.as_ref(),
                started.child_local_id.as_ref(),
            ),
            started.local_authority.as_ref(),
        ),
        RegistryEvent::PlanEnded(ended) => (
            one(
                ended.child_nhs_number.as_ref(),
                ended.child_local_id.as_ref(),
            ),
            ended.local_authority.as_ref(),
        ),
        RegistryEvent::BirthLinked(linked) => (
            [&linked.mother_nhs_number, &linked.baby_nhs_number]
                .into_iter()
                .filter_map(|number| validate::stored_child(number.as_ref(), None))
                .collect(),
            None,
        ),
        RegistryEvent::ChildLookedUp(looked) => (
            one(looked.nhs_number.as_ref(), looked.local_id.as_ref()),
            None,
        ),
        RegistryEvent::NhsNumberLinked(linked) => (
            [
                validate::stored_child(linked.nhs_number.as_ref(), None),
                validate::stored_child(None, linked.local_id.as_ref()),
            ]
            .into_iter()
            .flatten()
            .collect(),
            None,
        ),
        RegistryEvent::LeadSocialWorkerAllocated(allocated) => (
            one(
                allocated.child_nhs_number.as_ref(),
                allocated.child_local_id.as_ref(),
            ),
            allocated.local_authority.as_ref(),
        ),
        RegistryEvent::PlanCategoryChanged(_)
        | RegistryEvent::ContactsSet(_)
        | RegistryEvent::Quarantined(_)
        | RegistryEvent::RecordsRead(_)
        | RegistryEvent::AccessRefused(_) => (Vec::new(), None),
    }
}

impl Projection {
    /// An empty view; a read replica's remembers which plan events it has
    /// applied.
    pub fn new(replica: bool) -> Self {
        Projection {
            plan_events: replica.then(HashSet::new),
            ..Projection::default()
        }
    }

    /// Whether the plan event `id` has been applied (always, but on a
    /// replica).
    pub fn shows(&self, id: &EventId) -> bool {
        self.plan_events
            .as_ref()
            .is_none_or(|applied| applied.contains(id))
    }

    /// Applies one event of a registry pod's log: plans come from the
    /// primary's, lookups from every pod's. An event it cannot apply is
    /// refused with the reason (the caller quarantines it), and every child
    /// it names is marked unsure, so lookups of them fail closed.
    pub fn apply(&mut self, record: Record<'_>, event: RegistryEvent) -> Result<(), String> {
        if let (Some(applied), Some(id)) = (
            self.plan_events.as_mut(),
            EventId::from_slice(&record.envelope.event_id),
        ) && matches!(
            event,
            RegistryEvent::PlanStarted(_)
                | RegistryEvent::PlanCategoryChanged(_)
                | RegistryEvent::PlanEnded(_)
        ) {
            applied.insert(id);
        }
        let (children, local_authority) = named(&event);
        let mut children: Vec<ChildId> = children
            .into_iter()
            .map(|child| self.resolve(child))
            .collect();
        let mut local_authority = local_authority.cloned();
        // The children of the plan it is about, if the plan is known: an
        // end or a change that cannot be applied leaves that plan unsure.
        let known = chronology::plan_of(&event).and_then(|id| self.plan_index.get(id).copied());
        if let Some(plan) = known.and_then(|index| self.plans.get(index as usize)) {
            children.push(self.resolve(plan.aggregate.child.clone()));
            children.extend(plan.aggregate.baby.map(ChildId::Nhs));
            local_authority.get_or_insert_with(|| self.local_authority(plan).clone());
        }
        let applied = self.apply_event(record, event);
        if applied.is_err() {
            // The record is in the plan's stream all the same: a later
            // write to the plan is decided on the plan as it stands, at the
            // stream's real version, instead of failing its version check
            // for ever.
            if let Some(plan) = known.and_then(|index| self.plans.get_mut(index as usize))
                && record.envelope.stream_id == format!("plan-{}", plan.id)
            {
                plan.version = record.envelope.stream_version;
            }
            for child in children {
                let unsure = self.unsure.entry(child).or_insert_with(|| Unsure {
                    producer: record.producer.to_owned(),
                    position: record.position,
                    owners: Vec::new(),
                });
                if let Some(owner) = &local_authority
                    && !unsure
                        .owners
                        .iter()
                        .any(|known| known.ods_code == owner.ods_code)
                {
                    unsure.owners.push(owner.clone());
                }
            }
        }
        applied
    }

    /// Whether a child's history could not be fully applied.
    pub fn unsure(&self, child: &ChildId) -> Option<&Unsure> {
        self.unsure.get(&self.resolve(child.clone()))
    }

    /// Whom a child's record is held under now: a local identifier linked
    /// to an NHS number is that number.
    /// (The links are the chronology's: one record of them.)
    pub fn resolve(&self, child: ChildId) -> ChildId {
        self.chronology.resolve(child)
    }

    /// The NHS number a local identifier is linked to, if it is.
    pub fn linked_to(&self, local: &LocalChildId) -> Option<NhsNumber> {
        self.chronology.linked_to(local)
    }

    /// The local identifiers linked to an NHS number.
    pub fn local_ids_of(&self, number: &NhsNumber) -> &[LocalChildId] {
        self.chronology.local_ids_of(number)
    }

    /// Links an NHS number to a local identifier: what was held under the
    /// one is held under the other (plans, accesses, the chronology, and
    /// an unsure history, which stays unsure).
    fn link(&mut self, local: LocalChildId, number: NhsNumber) -> Result<(), String> {
        match self.linked_to(&local) {
            Some(linked) if linked == number => return Ok(()),
            Some(linked) => {
                return Err(format!("local_id: {local} is already linked to {linked}"));
            }
            None => {}
        }
        let from = ChildId::Local(local.clone());
        let to = ChildId::Nhs(number);
        if let Some(held) = self.children.remove(&from) {
            let entry = self.children.entry(to.clone()).or_default();
            entry.plans = entry
                .plans
                .iter()
                .chain(held.plans.iter())
                .copied()
                .collect();
            let mut accesses: Vec<Access> = entry
                .accesses
                .iter()
                .chain(held.accesses.iter())
                .copied()
                .collect();
            accesses.sort_by_key(|access| std::cmp::Reverse(access.at_micros));
            accesses.truncate(RECENT_ACCESSES);
            entry.accesses = accesses.into_boxed_slice();
        }
        if let Some(unsure) = self.unsure.remove(&from) {
            self.unsure.entry(to).or_insert(unsure);
        }
        self.chronology.link(local, number);
        Ok(())
    }

    /// What share of `children` have an NHS number, as a percentage (100
    /// when there are none): the match rate CP-IS asks councils for.
    pub fn match_rate_percent(with_nhs_number: u32, children: u32) -> f64 {
        match children {
            0 => 100.0,
            all => f64::from(with_nhs_number) * 100.0 / f64::from(all),
        }
    }

    /// A council's children on plans in force today, and which of them are
    /// held under a local identifier not yet linked: (children counted,
    /// the unmatched with their plans). Unborn plans are the mother's and
    /// not counted.
    pub fn match_of(
        &self,
        council: &str,
        today: domain::date::Date,
    ) -> (u32, Vec<(LocalChildId, Vec<&PlanRecord>)>) {
        let mut counted = 0;
        let mut unmatched = Vec::new();
        for (child, entry) in &self.children {
            let plans: Vec<&PlanRecord> = entry
                .plans
                .iter()
                .filter_map(|index| self.plans.get(*index as usize))
                .filter(|plan| {
                    plan.aggregate.plan_type != domain::codes::PlanType::Unborn
                        && plan.aggregate.in_force_on(today)
                        && self.local_authority(plan).ods_code == council
                })
                .collect();
            if plans.is_empty() {
                continue;
            }
            counted += 1;
            if let ChildId::Local(local) = child {
                unmatched.push((local.clone(), plans));
            }
        }
        unmatched.sort_by(|a, b| a.0.cmp(&b.0));
        (counted, unmatched)
    }

    fn apply_event(&mut self, record: Record<'_>, event: RegistryEvent) -> Result<(), String> {
        let version = record.envelope.stream_version;
        // What the event means to its plan, if it is a plan's: the one way
        // a stored plan event becomes a domain event.
        let change = convert::to_domain(&event)?;
        match (event, change) {
            (RegistryEvent::PlanStarted(started), Some(change)) => {
                if started.plan_id.is_empty() {
                    return Err("plan_id: is required".to_owned());
                }
                let aggregate = Plan::from_events(&[change]).ok_or("a start makes a plan")?;
                let child = self.resolve(aggregate.child.clone());
                let child_name = matches!(aggregate.child, ChildId::Local(_))
                    .then(|| started.child_name.as_str().into());
                let expected_date_of_delivery = match started.expected_date_of_delivery.as_ref() {
                    Some(expected) => {
                        Some(convert::date("expected_date_of_delivery", Some(expected))?)
                    }
                    None => None,
                };
                let local_authority = self
                    .organisations
                    .intern_message(&started.local_authority.unwrap_or_default());
                let lead_social_worker = started
                    .lead_social_worker
                    .as_ref()
                    .map(|worker| self.social_workers.intern_message(worker));
                let care_team = {
                    let key: Vec<u8> = started
                        .care_team
                        .iter()
                        .flat_map(|member| member.encode_length_delimited_to_vec())
                        .collect();
                    self.care_teams.intern(&key, || started.care_team.clone())
                };
                let id: Arc<str> = started.plan_id.into();
                let index = self.plans.len() as u32;
                self.plans.push(PlanRecord {
                    id: id.clone(),
                    aggregate,
                    wire_type: started.r#type,
                    wire_category: started.category,
                    wire_end_reason: 0,
                    expected_date_of_delivery,
                    local_authority,
                    lead_social_worker,
                    care_team,
                    version,
                    made_by_conference: !started.conference_id.is_empty(),
                    child_name,
                });
                self.plan_index.insert(id, index);
                self.add_plan_to(child, index);
            }
            (RegistryEvent::PlanCategoryChanged(changed), Some(change)) => {
                let record = self.plan_mut(&changed.plan_id)?;
                record.aggregate.apply(&change);
                record.wire_category = changed.category;
                record.version = version;
            }
            (RegistryEvent::LeadSocialWorkerAllocated(allocated), Some(change)) => {
                let worker = allocated
                    .lead_social_worker
                    .as_ref()
                    .map(|worker| self.social_workers.intern_message(worker));
                let record = self.plan_mut(&allocated.plan_id)?;
                record.aggregate.apply(&change);
                record.lead_social_worker = worker;
                record.version = version;
            }
            (RegistryEvent::PlanEnded(ended), Some(change)) => {
                let record = self.plan_mut(&ended.plan_id)?;
                record.aggregate.apply(&change);
                record.wire_end_reason = ended.reason;
                record.version = version;
            }
            (RegistryEvent::BirthLinked(linked), Some(change)) => {
                let index = self.plan_index_of(&linked.plan_id)?;
                let record = &mut self.plans[index as usize];
                record.aggregate.apply(&change);
                record.version = version;
                if let Some(baby) = record.aggregate.baby {
                    self.add_plan_to(ChildId::Nhs(baby), index);
                }
            }
            (RegistryEvent::NhsNumberLinked(linked), _) => {
                let number = convert::nhs("nhs_number", linked.nhs_number.as_ref())?;
                let local = validate::optional_local_child_id("local_id", linked.local_id.as_ref())
                    .map_err(|status| status.message().to_owned())?
                    .ok_or("local_id: is required")?;
                self.link(local, number)?;
            }
            (RegistryEvent::ChildLookedUp(looked), _) => {
                let child = validate::child_id(
                    "nhs_number",
                    looked.nhs_number.as_ref(),
                    "local_id",
                    looked.local_id.as_ref(),
                )
                .map_err(|status| status.message().to_owned())?;
                let child = self.resolve(child);
                self.note_read(
                    record,
                    looked.caller.clone(),
                    LOOKUP,
                    &looked.purpose,
                    child.nhs_number(),
                    looked.owners.iter().map(|owner| owner.ods_code.clone()),
                );
                let caller = looked.caller.unwrap_or_default();
                let who = self.callers.intern_message(&wire::Access {
                    organisation: caller.organisation,
                    care_setting: caller.care_setting,
                    role: caller.role,
                    user_display_name: caller.display_name,
                    ..wire::Access::default()
                });
                let purpose = self
                    .purposes
                    .intern(looked.purpose.as_bytes(), || looked.purpose.clone());
                let at = record.envelope.recorded_at.unwrap_or_default();
                let access = Access {
                    at_micros: micros(&at),
                    who,
                    purpose,
                };
                // Newest first. Lookups on other pods arrive late and out of
                // time order, so each goes where its time puts it.
                let entry = self.children.entry(child).or_default();
                let mut accesses = entry.accesses.to_vec();
                let place = accesses.partition_point(|known| known.at_micros >= access.at_micros);
                accesses.insert(place, access);
                accesses.truncate(RECENT_ACCESSES);
                entry.accesses = accesses.into_boxed_slice();
            }
            (RegistryEvent::ContactsSet(set), _) => {
                let contacts = set.contacts.ok_or("contacts: is required")?;
                let ods = contacts
                    .local_authority
                    .as_ref()
                    .map(|la| la.ods_code.clone())
                    .unwrap_or_default();
                self.contacts.insert(ods, contacts);
            }
            (RegistryEvent::RecordsRead(read), _) => self.note_records_read(record, &read),
            (RegistryEvent::Quarantined(_) | RegistryEvent::AccessRefused(_), _) => {}
            (event, None) => {
                return Err(format!(
                    "{} is a plan's event but means nothing to a plan",
                    event.content_type()
                ));
            }
        }
        Ok(())
    }

    fn add_plan_to(&mut self, child: ChildId, plan: u32) {
        let entry = self.children.entry(child).or_default();
        entry.plans = entry.plans.iter().copied().chain([plan]).collect();
    }

    fn plan_index_of(&self, plan_id: &str) -> Result<u32, String> {
        self.plan_index
            .get(plan_id)
            .copied()
            .ok_or_else(|| format!("plan_id: no plan \"{plan_id}\" is known"))
    }

    fn plan_mut(&mut self, plan_id: &str) -> Result<&mut PlanRecord, String> {
        let index = self.plan_index_of(plan_id)?;
        Ok(&mut self.plans[index as usize])
    }

    pub fn plan(&self, plan_id: &str) -> Option<&PlanRecord> {
        let index = *self.plan_index.get(plan_id)?;
        self.plans.get(index as usize)
    }

    /// The plans held against a child (a local identifier linked to an NHS
    /// number is that number).
    pub fn plans_of(&self, child: &ChildId) -> impl Iterator<Item = &PlanRecord> {
        self.children
            .get(&self.resolve(child.clone()))
            .into_iter()
            .flat_map(|entry| entry.plans.iter())
            .filter_map(|index| self.plans.get(*index as usize))
    }

    /// Keeps a read of children's records for the access report of each of
    /// `owners`.
    pub fn note_read(
        &mut self,
        record: Record<'_>,
        reader: Option<contract::common::v1::CallerIdentity>,
        rpc: &str,
        purpose: &str,
        children: impl IntoIterator<Item = NhsNumber>,
        owners: impl IntoIterator<Item = String>,
    ) {
        let reader = self.readers.intern_message(&reader.unwrap_or_default());
        let rpc = self.purposes.intern(rpc.as_bytes(), || rpc.to_owned());
        let purpose = self
            .purposes
            .intern(purpose.as_bytes(), || purpose.to_owned());
        let log = self
            .purposes
            .intern(record.producer.as_bytes(), || record.producer.to_owned());
        let at = record.envelope.recorded_at.unwrap_or_default();
        let read = Read {
            at_micros: micros(&at),
            reader,
            rpc,
            purpose,
            log,
            position: record.position,
            children: children.into_iter().collect(),
        };
        for owner in owners {
            self.reads.entry(owner).or_default().push(read.clone());
        }
    }

    /// Keeps a `RecordsRead` from any service's log, its reader the event's
    /// actor.
    pub fn note_records_read(&mut self, record: Record<'_>, read: &RecordsRead) {
        let reader = match record
            .envelope
            .actor
            .as_ref()
            .and_then(|actor| actor.kind.as_ref())
        {
            Some(actor::Kind::Person(person)) => Some(person.clone()),
            _ => None,
        };
        let children = read
            .children
            .iter()
            .filter_map(|child| NhsNumber::parse(&child.value).ok());
        let children: Vec<NhsNumber> = children.collect();
        // A read that names no owner (a notification delivered) belongs to
        // the councils the children's records belong to, as known here.
        let mut owners: Vec<String> = read.owners.clone();
        if owners.is_empty() {
            for child in &children {
                let child = ChildId::Nhs(*child);
                owners.extend(self.chronology.parties_of(&child).owners);
                owners.extend(
                    self.plans_of(&child)
                        .map(|plan| self.local_authority(plan).ods_code.clone())
                        .collect::<Vec<_>>(),
                );
            }
            owners.sort();
            owners.dedup();
        }
        self.note_read(record, reader, &read.rpc, &read.purpose, children, owners);
    }

    /// The reads of `owner`'s children's records recorded in
    /// `from..to` (microseconds since the epoch), oldest first.
    pub fn reads_of(&self, owner: &str, from: i64, to: i64) -> Vec<wire::AccessRecord> {
        let mut reads: Vec<&Read> = self
            .reads
            .get(owner)
            .into_iter()
            .flatten()
            .filter(|read| (from..to).contains(&read.at_micros))
            .collect();
        reads.sort_by_key(|read| (read.at_micros, read.log, read.position));
        reads
            .into_iter()
            .map(|read| wire::AccessRecord {
                at: Some(prost_types::Timestamp {
                    seconds: read.at_micros.div_euclid(1_000_000),
                    nanos: (read.at_micros.rem_euclid(1_000_000) * 1_000) as i32,
                }),
                reader: Some(self.readers.get(read.reader).clone()),
                rpc: self.purposes.get(read.rpc).clone(),
                purpose: self.purposes.get(read.purpose).clone(),
                children: read
                    .children
                    .iter()
                    .map(|child| contract::common::v1::NhsNumber {
                        value: child.to_string(),
                    })
                    .collect(),
                recorded: Some(contract::common::v1::LogPosition {
                    log: self.purposes.get(read.log).clone(),
                    position: read.position,
                }),
            })
            .collect()
    }

    /// The last accesses to a child's record, newest first.
    pub fn accesses_of(&self, child: &ChildId) -> Vec<wire::Access> {
        let Some(entry) = self.children.get(&self.resolve(child.clone())) else {
            return Vec::new();
        };
        entry
            .accesses
            .iter()
            .map(|access| {
                let mut view = self.callers.get(access.who).clone();
                view.at = Some(prost_types::Timestamp {
                    seconds: access.at_micros.div_euclid(1_000_000),
                    nanos: (access.at_micros.rem_euclid(1_000_000) * 1_000) as i32,
                });
                view.purpose.clone_from(self.purposes.get(access.purpose));
                view
            })
            .collect()
    }

    pub fn local_authority(&self, record: &PlanRecord) -> &Organisation {
        self.organisations.get(record.local_authority)
    }

    pub fn care_team(&self, record: &PlanRecord) -> &[Organisation] {
        self.care_teams.get(record.care_team)
    }

    /// How a plan shows on the wire, before the caller's entitlements.
    pub fn view(&self, record: &PlanRecord) -> wire::Plan {
        let aggregate = &record.aggregate;
        let (child_nhs_number, child_local_id) = validate::to_wire_child(&self.child_of(record));
        wire::Plan {
            plan_id: record.id.to_string(),
            r#type: record.wire_type,
            category: record.wire_category,
            start_date: Some(validate::to_wire_date(aggregate.start_date)),
            end_date: aggregate
                .end
                .map(|(end_date, _)| validate::to_wire_date(end_date)),
            end_reason: record.wire_end_reason,
            owner: Some(self.owner(self.local_authority(record))),
            lead_social_worker: record
                .lead_social_worker
                .map(|worker| self.social_workers.get(worker).clone()),
            expected_date_of_delivery: record.expected_date_of_delivery.map(validate::to_wire_date),
            visible_until: None,
            child_nhs_number,
            child_local_id,
        }
    }

    /// Whom a plan is about now: the baby once an unborn plan's birth is
    /// linked, the NHS number linked to a local identifier.
    pub fn child_of(&self, record: &PlanRecord) -> ChildId {
        match record.aggregate.baby {
            Some(baby) => ChildId::Nhs(baby),
            None => self.resolve(record.aggregate.child.clone()),
        }
    }

    /// How to reach the local authority that owns a plan.
    pub fn owner(&self, local_authority: &Organisation) -> wire::LocalAuthorityContacts {
        let mut contacts = self
            .contacts
            .get(&local_authority.ods_code)
            .cloned()
            .unwrap_or_else(|| wire::LocalAuthorityContacts {
                local_authority: Some(local_authority.clone()),
                ..Default::default()
            });
        let missing: Vec<&str> = [
            ("office-hours", &contacts.office_hours_phone),
            ("out-of-hours", &contacts.out_of_hours_phone),
        ]
        .into_iter()
        .filter(|(_, number)| number.trim().is_empty())
        .map(|(which, _)| which)
        .collect();
        if !missing.is_empty() {
            let council = contacts.local_authority.clone().unwrap_or_default();
            contacts.missing_numbers = format!(
                "{} has registered no {} telephone number: call its main switchboard and ask for children's social care",
                if council.name.is_empty() {
                    council.ods_code.clone()
                } else {
                    format!("{} ({})", council.name, council.ods_code)
                },
                missing.join(" or ")
            );
        }
        contacts
    }
}

#[cfg(test)]
mod tests {
    use contract::common::v1::{Date, NhsNumber as WireNhs};

    use super::*;

    const CHILD: &str = "9990000018";
    const OTHER: &str = "9990000026";

    fn nhs(value: &str) -> Option<WireNhs> {
        Some(WireNhs {
            value: value.into(),
        })
    }

    fn date(year: i32, month: i32, day: i32) -> Option<Date> {
        Some(Date { year, month, day })
    }

    fn council() -> Option<Organisation> {
        Some(Organisation {
            ods_code: "E09000999".into(),
            name: "Test council".into(),
            ..Organisation::default()
        })
    }

    fn started(plan_id: &str, child: Option<WireNhs>) -> RegistryEvent {
        RegistryEvent::PlanStarted(wire::PlanStarted {
            plan_id: plan_id.into(),
            r#type: wire::PlanType::ChildProtection.into(),
            child_nhs_number: child,
            category: contract::common::v1::AbuseCategory::Physical.into(),
            start_date: date(2026, 1, 20),
            local_authority: council(),
            ..wire::PlanStarted::default()
        })
    }

    fn ended(plan_id: &str, child: Option<WireNhs>) -> RegistryEvent {
        RegistryEvent::PlanEnded(wire::PlanEnded {
            plan_id: plan_id.into(),
            end_date: date(2026, 6, 1),
            reason: contract::common::v1::PlanEndReason::NoLongerAtRisk.into(),
            child_nhs_number: child,
            local_authority: council(),
            ..wire::PlanEnded::default()
        })
    }

    fn changed(plan_id: &str, category: i32) -> RegistryEvent {
        RegistryEvent::PlanCategoryChanged(wire::PlanCategoryChanged {
            plan_id: plan_id.into(),
            category,
            changed_on: date(2026, 4, 1),
            ..wire::PlanCategoryChanged::default()
        })
    }

    /// Applies `events` in order; returns the view and what each
    /// application came to.
    fn check(events: Vec<RegistryEvent>) -> (Projection, Vec<Result<(), String>>) {
        let mut projection = Projection::new(false);
        let outcomes =
            service_core::follow::apply_in_order("plan-registry", events, |record, event| {
                projection.apply(record, event)
            });
        (projection, outcomes)
    }

    fn child(value: &str) -> ChildId {
        ChildId::Nhs(NhsNumber::parse(value).expect("a test NHS number"))
    }

    #[test]
    fn what_cannot_be_applied_is_refused_naming_the_field_and_its_children_are_unsure() {
        // (what, events, the last one's refusal naming, children then unsure)
        type Case = (
            &'static str,
            Vec<RegistryEvent>,
            Option<&'static str>,
            Vec<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                "a plan as every day",
                vec![started("p1", nhs(CHILD))],
                None,
                vec![],
            ),
            (
                "a plan without an NHS number: nobody to mark",
                vec![started("p1", None)],
                Some("child_nhs_number"),
                vec![],
            ),
            (
                "a plan without an id",
                vec![started("", nhs(CHILD))],
                Some("plan_id"),
                vec![CHILD],
            ),
            (
                "an end of a plan the registry does not know",
                vec![started("p1", nhs(CHILD)), ended("typo", nhs(CHILD))],
                Some("plan_id"),
                vec![CHILD],
            ),
            (
                "an end of a plan whose start was quarantined",
                vec![started("p1", None), ended("p1", None)],
                Some("plan_id"),
                vec![],
            ),
            (
                "a change of a known plan to no category: its child",
                vec![started("p1", nhs(CHILD)), changed("p1", 0)],
                Some("category"),
                vec![CHILD],
            ),
            (
                "an end of a known plan without a date: its child",
                vec![
                    started("p1", nhs(CHILD)),
                    RegistryEvent::PlanEnded(wire::PlanEnded {
                        plan_id: "p1".into(),
                        ..wire::PlanEnded::default()
                    }),
                ],
                Some("end_date"),
                vec![CHILD],
            ),
            (
                "a change of a plan it does not know",
                vec![changed("p9", 1)],
                Some("plan_id"),
                vec![],
            ),
            (
                "a birth linked to a plan it does not know names both",
                vec![RegistryEvent::BirthLinked(wire::BirthLinked {
                    plan_id: "p9".into(),
                    mother_nhs_number: nhs(CHILD),
                    baby_nhs_number: nhs(OTHER),
                    born_on: date(2026, 3, 3),
                })],
                Some("plan_id"),
                vec![CHILD, OTHER],
            ),
            (
                "contacts without their numbers",
                vec![RegistryEvent::ContactsSet(
                    wire::LocalAuthorityContactsSet { contacts: None },
                )],
                Some("contacts"),
                vec![],
            ),
        ];
        for (what, events, refusal, unsure) in cases {
            let (projection, outcomes) = check(events);
            let last = outcomes.last().expect("an outcome");
            match refusal {
                None => assert_eq!(last, &Ok(()), "{what}"),
                Some(field) => {
                    let reason = last.as_ref().expect_err(what);
                    assert!(reason.starts_with(field), "{what}: {reason}");
                }
            }
            for number in [CHILD, OTHER] {
                assert_eq!(
                    projection.unsure(&child(number)).is_some(),
                    unsure.contains(&number),
                    "{what}: {number}"
                );
            }
        }
    }

    fn local_wire() -> Option<contract::common::v1::LocalChildId> {
        Some(contract::common::v1::LocalChildId {
            local_authority_ods_code: "E09000999".into(),
            value: "LCS-1".into(),
        })
    }

    fn started_local(plan_id: &str) -> RegistryEvent {
        let RegistryEvent::PlanStarted(started) = started(plan_id, None) else {
            unreachable!("a start")
        };
        RegistryEvent::PlanStarted(wire::PlanStarted {
            child_local_id: local_wire(),
            child_name: "Baby Testnewborn".into(),
            ..started
        })
    }

    fn linked(number: &str) -> RegistryEvent {
        RegistryEvent::NhsNumberLinked(wire::ChildNhsNumberLinked {
            local_id: local_wire(),
            nhs_number: nhs(number),
            linked_on: date(2026, 2, 1),
        })
    }

    #[test]
    fn what_a_local_identifier_holds_is_the_linked_numbers_before_and_after_the_link() {
        let local = ChildId::Local(LocalChildId::parse("E09000999", "LCS-1").expect("valid"));
        let (projection, outcomes) = check(vec![
            started_local("p1"),
            started("p0", nhs(CHILD)),
            linked(CHILD),
            // A plan a conference later makes under the local identifier.
            started_local("p2"),
            linked(CHILD),
            linked(OTHER),
        ]);
        assert!(outcomes[..5].iter().all(Result::is_ok), "{outcomes:?}");
        assert!(
            outcomes[5]
                .as_ref()
                .is_err_and(|why| why.starts_with("local_id")),
            "a second number is refused: {outcomes:?}"
        );
        let plans: Vec<&str> = projection
            .plans_of(&child(CHILD))
            .map(|plan| &*plan.id)
            .collect();
        assert_eq!(plans, ["p0", "p1", "p2"]);
        assert_eq!(
            projection.plans_of(&local).count(),
            3,
            "the identifier still finds them"
        );
        let view = projection.view(projection.plan("p1").expect("p1"));
        assert_eq!(view.child_nhs_number, nhs(CHILD));
        assert_eq!(view.child_local_id, None);
        let today = domain::date::Date::from_ymd(2026, 3, 1).expect("a date");
        assert_eq!(projection.match_of("E09000999", today).0, 1);
        assert!(projection.match_of("E09000999", today).1.is_empty());

        let (unlinked, _) = check(vec![started_local("p1"), started("p0", nhs(CHILD))]);
        let (counted, unmatched) = unlinked.match_of("E09000999", today);
        assert_eq!((counted, unmatched.len()), (2, 1));
        assert_eq!(
            unmatched[0].1[0].child_name.as_deref(),
            Some("Baby Testnewborn")
        );
    }

    #[test]
    fn an_unsure_child_names_the_first_unapplied_record_and_each_owner_once() {
        let (projection, _) = check(vec![
            started("p1", nhs(CHILD)),
            ended("typo", nhs(CHILD)),
            ended("typo-again", nhs(CHILD)),
        ]);
        let unsure = projection.unsure(&child(CHILD)).expect("unsure");
        assert_eq!(
            (unsure.producer.as_str(), unsure.position),
            ("plan-registry", 1)
        );
        assert_eq!(
            unsure
                .owners
                .iter()
                .map(|o| o.ods_code.as_str())
                .collect::<Vec<_>>(),
            ["E09000999"]
        );
        // The plan itself is untouched: it is the history around it that
        // is not whole.
        assert_eq!(projection.plans_of(&child(CHILD)).count(), 1);
    }

    #[test]
    fn a_refused_event_of_a_known_plan_still_counts_in_its_stream() {
        use contract::events::v1::EventEnvelope;
        let mut projection = Projection::new(false);
        let undated_end = RegistryEvent::PlanEnded(wire::PlanEnded {
            plan_id: "p1".into(),
            ..wire::PlanEnded::default()
        });
        for (version, event) in [started("p1", nhs(CHILD)), undated_end]
            .into_iter()
            .enumerate()
        {
            let envelope = EventEnvelope {
                stream_id: "plan-p1".into(),
                stream_version: version as u64,
                ..EventEnvelope::default()
            };
            let record = Record {
                producer: "plan-registry",
                position: version as u64,
                envelope: &envelope,
            };
            let _ = projection.apply(record, event);
        }
        // The next end is checked against version 1, not refused for ever
        // as a lost race.
        assert_eq!(projection.plan("p1").expect("the plan").version, 1);
        assert!(projection.unsure(&child(CHILD)).is_some());
    }
}
