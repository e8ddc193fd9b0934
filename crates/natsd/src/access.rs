//! Who may do what on the NATS server: the permissions each identity's
//! NKEY is given, exactly the subjects this crate's code uses and no more,
//! rendered as the `accounts` block of a nats-server configuration
//! (`secrets/users.conf` beside `deploy/nats/*.conf`). The reference for
//! operators is `proto/SUBJECTS.md`.
//!
//! - A **service** publishes only its own producer's subjects and manages
//!   only its own stream; it reads (creates durable consumers on, pulls
//!   and acknowledges) only the streams of the producers it follows, and
//!   cannot create them: a stream is made by its producer, so no one else
//!   chooses its settings.
//! - The **backbone** (every service in one process) is every service.
//! - A **partner** (an agency's system, by ODS code) receives only its own
//!   organisation's notifications: a plain subscription to
//!   `safeguard.notification.<ODS>.>`, or a durable pull consumer named
//!   `partner-<ODS>` filtered to those subjects. Nothing else: no other
//!   organisation's subjects, no producer's stream, no publishing.
//!
//! Every identity has an inbox of its own (`_INBOX_<name>`), where replies
//! to its requests arrive, so no one can read another's replies.

use bus::{inbox_prefix, stream_name, subject_prefix};
use contract::producers;

/// One identity on the NATS server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NatsIdentity {
    /// One service: the producer it publishes as, and those it follows.
    Service {
        producer: String,
        follows: Vec<String>,
    },
    /// Every service in one process, publishing as each of `producers`.
    Backbone { producers: Vec<String> },
    /// An agency's system, by ODS code.
    Partner { ods: String },
    /// The people who run the NATS server: everything (deleting a stream
    /// or a consumer, say). Never a service's or a partner's credentials.
    Operator,
}

impl NatsIdentity {
    /// The name it connects with: its inbox prefix, and what the server's
    /// log calls it.
    pub fn name(&self) -> String {
        match self {
            NatsIdentity::Service { producer, .. } => producer.clone(),
            NatsIdentity::Backbone { .. } => "backbone".to_owned(),
            NatsIdentity::Partner { ods } => partner_consumer(ods),
            NatsIdentity::Operator => "operator".to_owned(),
        }
    }

    /// The subjects it may publish to, and subscribe to.
    pub fn permissions(&self) -> Permissions {
        let mut publish = Vec::new();
        let mut subscribe = vec![format!("{}.>", inbox_prefix(&self.name()))];
        match self {
            NatsIdentity::Service { producer, follows } => {
                publish.extend(producing(producer));
                for followed in follows {
                    publish.extend(following(followed, followed == producer));
                }
            }
            NatsIdentity::Backbone { producers } => {
                for producer in producers {
                    publish.extend(producing(producer));
                    publish.extend(following(producer, true));
                }
            }
            NatsIdentity::Partner { ods } => {
                let stream = stream_name(NOTIFICATION);
                let consumer = partner_consumer(ods);
                let subjects = partner_subjects(ods);
                publish.extend([
                    format!("$JS.API.CONSUMER.CREATE.{stream}.{consumer}.{subjects}"),
                    format!("$JS.API.CONSUMER.INFO.{stream}.{consumer}"),
                    format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"),
                    format!("$JS.ACK.{stream}.{consumer}.>"),
                ]);
                subscribe.push(subjects);
            }
            NatsIdentity::Operator => {
                publish.push(">".to_owned());
                subscribe.push(">".to_owned());
            }
        }
        Permissions { publish, subscribe }
    }
}

/// The notification producer, whose subjects carry the recipient.
const NOTIFICATION: &str = producers::NOTIFICATION;

/// The backbone's services when the registry runs as `registry_pods` pods,
/// each with the producers it follows (its own among them: a service may
/// follow itself through the bus), and the one-process backbone.
pub fn services(registry_pods: u32) -> Vec<NatsIdentity> {
    let pods = producers::plan_registry_pods(registry_pods);
    let service = |producer: &str, follows: Vec<String>| NatsIdentity::Service {
        producer: producer.to_owned(),
        follows,
    };
    let mut all: Vec<String> = producers::ALL
        .iter()
        .map(|producer| (*producer).to_owned())
        .chain(pods.iter().skip(1).cloned())
        .collect();
    all.sort();
    let mut identities = vec![
        service(
            producers::REFERRAL_INTAKE,
            vec![producers::REFERRAL_INTAKE.into()],
        ),
        service(
            producers::CONFERENCE_SCHEDULER,
            // Conferences from the referrals, reviews from its own
            // outcomes, cancellations from the plans that end.
            vec![
                producers::REFERRAL_INTAKE.into(),
                producers::CONFERENCE_SCHEDULER.into(),
                producers::PLAN_REGISTRY.into(),
            ],
        ),
        service(NOTIFICATION, all.clone()),
    ];
    for pod in &pods {
        // Plans from the scheduler's outcomes, chronologies from the
        // referrals, conferences and reads, lookups from every pod.
        let mut follows = vec![
            producers::REFERRAL_INTAKE.to_owned(),
            producers::CONFERENCE_SCHEDULER.to_owned(),
            NOTIFICATION.to_owned(),
        ];
        follows.extend(pods.iter().cloned());
        identities.push(service(pod, follows));
    }
    identities.push(NatsIdentity::Backbone { producers: all });
    identities
}

/// What an identity may publish to and subscribe to; everything else is
/// refused by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

/// The durable consumer a partner may keep on the notification stream.
pub fn partner_consumer(ods: &str) -> String {
    format!("partner-{ods}")
}

/// Every notification subject of the organisation `ods`.
pub fn partner_subjects(ods: &str) -> String {
    format!("{}.{ods}.>", subject_prefix(NOTIFICATION))
}

/// A producer's own: its subjects, and its stream, which it alone makes.
fn producing(producer: &str) -> Vec<String> {
    let stream = stream_name(producer);
    vec![
        format!("{}.>", subject_prefix(producer)),
        format!("$JS.API.STREAM.INFO.{stream}"),
        format!("$JS.API.STREAM.CREATE.{stream}"),
        format!("$JS.API.STREAM.MSG.GET.{stream}"),
    ]
}

/// Reading a producer's stream through durable consumers of one's own.
fn following(producer: &str, own: bool) -> Vec<String> {
    let stream = stream_name(producer);
    let mut subjects = Vec::new();
    if !own {
        subjects.extend([
            format!("$JS.API.STREAM.INFO.{stream}"),
            format!("$JS.API.STREAM.MSG.GET.{stream}"),
        ]);
    }
    subjects.extend([
        format!("$JS.API.CONSUMER.CREATE.{stream}.*"),
        format!("$JS.API.CONSUMER.DELETE.{stream}.*"),
        format!("$JS.API.CONSUMER.INFO.{stream}.*"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.*"),
        format!("$JS.ACK.{stream}.*.>"),
    ]);
    subjects
}

/// The `accounts` block of a nats-server configuration giving each
/// `(public NKEY, identity)` its permissions, in one account with
/// JetStream; included from the server's configuration.
pub fn users_conf(users: &[(String, NatsIdentity)]) -> String {
    let quoted = |subjects: &[String]| {
        subjects
            .iter()
            .map(|subject| format!("              \"{subject}\"\n"))
            .collect::<String>()
    };
    let mut text = String::from(
        "# Made by safeguard (natsd::access): who may publish and\n\
         # subscribe to what. Public keys only; the seeds are each identity's secret.\n\
         accounts {\n  SAFEGUARD {\n    jetstream: enabled\n    users: [\n",
    );
    for (public_key, identity) in users {
        let permissions = identity.permissions();
        text.push_str(&format!(
            "      # {}\n      {{\n        nkey: {public_key}\n        permissions: {{\n          publish: {{\n            allow: [\n{}            ]\n          }}\n          subscribe: {{\n            allow: [\n{}            ]\n          }}\n        }}\n      }}\n",
            identity.name(),
            quoted(&permissions.publish),
            quoted(&permissions.subscribe),
        ));
    }
    text.push_str("    ]\n  }\n}\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_publishes_its_own_subjects_and_reads_what_it_follows() {
        let permissions = NatsIdentity::Service {
            producer: "conference-scheduler".into(),
            follows: vec!["referral-intake".into()],
        }
        .permissions();
        assert!(
            permissions
                .publish
                .contains(&"safeguard.conference-scheduler.>".to_owned())
        );
        assert!(
            !permissions
                .publish
                .iter()
                .any(|subject| subject.starts_with("safeguard.referral-intake"))
        );
        assert!(
            permissions
                .publish
                .contains(&"$JS.API.CONSUMER.MSG.NEXT.SAFEGUARD_REFERRAL_INTAKE.*".to_owned())
        );
        assert!(
            !permissions
                .publish
                .contains(&"$JS.API.STREAM.CREATE.SAFEGUARD_REFERRAL_INTAKE".to_owned())
        );
        assert!(
            !permissions
                .publish
                .iter()
                .any(|subject| subject.contains("SAFEGUARD_NOTIFICATION"))
        );
        assert_eq!(permissions.subscribe, ["_INBOX_conference-scheduler.>"]);
    }

    #[test]
    fn a_partner_receives_its_own_notifications_only() {
        let permissions = NatsIdentity::Partner {
            ods: "RXX01".into(),
        }
        .permissions();
        assert_eq!(
            permissions.subscribe,
            ["_INBOX_partner-RXX01.>", "safeguard.notification.RXX01.>"]
        );
        assert_eq!(
            permissions.publish[0],
            "$JS.API.CONSUMER.CREATE.SAFEGUARD_NOTIFICATION.partner-RXX01.safeguard.notification.RXX01.>"
        );
        assert!(
            permissions
                .publish
                .iter()
                .all(|subject| subject.contains("partner-RXX01"))
        );
    }
}
