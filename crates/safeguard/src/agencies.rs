//! Acting as the people of many agencies at once, in a development realm:
//! what the demo, the black-box tests and the benchmarks use. Each
//! organisation's system connects over its own mutually authenticated
//! connection with the certificate the realm issues it, and each person
//! sends a token the realm signs for them, exactly as a real agency's
//! system would with its own certificate and its staff's CIS2 tokens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use contract::common::v1::{CallerIdentity, Role};
use contract::conference::v1::conference_scheduler_client::ConferenceSchedulerClient;
use contract::notification::v1::notification_client::NotificationClient;
use contract::referral::v1::referral_intake_client::ReferralIntakeClient;
use contract::registry::v1::plan_registry_client::PlanRegistryClient;
use tonic::transport::Channel;
use trust::Realm;
use trust::client::{Authorised, Bearer, Credentials};
use trust::token::Person;

use crate::demo::Endpoints;

/// How long the tokens minted here last: a working session.
pub const SESSION: Duration = Duration::from_secs(8 * 3600);

/// Clients of every service, acting as one person.
#[derive(Debug, Clone)]
pub struct Clients {
    pub referrals: ReferralIntakeClient<Authorised>,
    pub conferences: ConferenceSchedulerClient<Authorised>,
    pub registry: PlanRegistryClient<Authorised>,
    pub notifications: NotificationClient<Authorised>,
}

/// The systems of every agency, as a development realm issues them.
#[derive(Debug, Clone)]
pub struct Agencies {
    realm: Arc<Realm>,
    endpoints: Endpoints,
    /// One connection per organisation and address, made on first use.
    channels: Arc<Mutex<HashMap<(String, String), Channel>>>,
}

/// The person a wire identity describes, with the development realm's role
/// code (the contract's role name).
pub fn person(who: &CallerIdentity) -> Person {
    let organisation = who.organisation.clone().unwrap_or_default();
    Person {
        organisation: organisation.ods_code,
        organisation_name: organisation.name,
        user_id: who.user_id.clone(),
        display_name: who.display_name.clone(),
        role: role_code(who.role()),
    }
}

/// A contract role as the development realm's issuer writes it.
pub fn role_code(role: Role) -> String {
    trust::caller::role_name(role).to_owned()
}

impl Agencies {
    pub fn new(realm: Realm, endpoints: Endpoints) -> Agencies {
        Agencies {
            realm: Arc::new(realm),
            endpoints,
            channels: Arc::default(),
        }
    }

    /// The realm in `dir` (made by `safeguard up` there).
    pub fn open(dir: &std::path::Path, endpoints: Endpoints) -> Result<Agencies, String> {
        Ok(Agencies::new(Realm::open(dir)?, endpoints))
    }

    /// The same agencies (their connections too) with the services at
    /// `endpoints`.
    pub fn at(&self, endpoints: Endpoints) -> Agencies {
        Agencies {
            endpoints,
            ..self.clone()
        }
    }

    pub fn realm(&self) -> &Realm {
        &self.realm
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// Clients acting as `who`, through their organisation's system.
    pub fn clients(&self, who: &CallerIdentity) -> Result<Clients, String> {
        let authorised = |url: &str| self.authorised(who, url);
        Ok(Clients {
            referrals: ReferralIntakeClient::new(authorised(&self.endpoints.referrals)?),
            conferences: ConferenceSchedulerClient::new(authorised(&self.endpoints.conferences)?),
            registry: PlanRegistryClient::new(authorised(&self.endpoints.registry)?),
            notifications: NotificationClient::new(authorised(&self.endpoints.notifications)?),
        })
    }

    /// A channel to `url` acting as `who`: for any service's client.
    pub fn authorised(&self, who: &CallerIdentity, url: &str) -> Result<Authorised, String> {
        let person = person(who);
        let bearer = Bearer::new(&self.realm.token(&person, SESSION)?);
        Ok(tonic::service::interceptor::InterceptedService::new(
            self.channel(&person.organisation, url)?,
            bearer,
        ))
    }

    /// The connection of `organisation`'s system to `url`.
    pub fn channel(&self, organisation: &str, url: &str) -> Result<Channel, String> {
        let key = (organisation.to_owned(), url.to_owned());
        let mut channels = self
            .channels
            .lock()
            .map_err(|_| "a connection was poisoned".to_owned())?;
        if let Some(channel) = channels.get(&key) {
            return Ok(channel.clone());
        }
        let ods = domain::OdsCode::parse(organisation)
            .map_err(|error| format!("organisation {organisation}: {error}"))?;
        let issued = self.realm.organisation_certificate(&ods)?;
        let channel = Credentials::new(self.realm.ca_pem(), &issued).channel(url)?;
        channels.insert(key, channel.clone());
        Ok(channel)
    }
}
