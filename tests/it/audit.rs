//! Every read of children's records is an event in the reading service's
//! log, naming who read (as their certificate and token proved them), why
//! and what; every call the access policy refuses is a security event.
//! Read back over each service's own `ReadEvents`, as a service would.

use contract::common::v1::{OrganisationKind, Role};
use contract::conference::v1 as conference;
use contract::events::v1::event_log_reader_client::EventLogReaderClient;
use contract::events::v1::{AccessRefused, EventEnvelope, ReadEventsRequest, RecordsRead, actor};
use contract::notification::v1 as note;
use contract::referral::v1 as referral;
use contract::registry::v1 as registry_wire;
use prost::Message as _;
use tonic::Code;

use crate::fixtures::{self, chair, child, member_of};

/// Every envelope in `log`, read as one of the backbone's services.
async fn envelopes(backbone: &fixtures::Backbone, log: &str) -> Vec<EventEnvelope> {
    let url = &backbone._backbone.as_ref().expect("backbone").url;
    let service = backbone
        .agencies
        .realm()
        .service_credentials("audit-test")
        .expect("credentials");
    let mut reader = EventLogReaderClient::new(service.connect(url).expect("channel"));
    let mut envelopes = Vec::new();
    let mut from = 0;
    loop {
        let mut records = reader
            .read_events(ReadEventsRequest {
                log: log.into(),
                from_position: from,
                limit: 0,
            })
            .await
            .expect("read events")
            .into_inner();
        let mut read = 0;
        while let Some(record) = records.message().await.expect("stream") {
            let event = eventlog::RecordedEvent::from_record(record.position, &record.record)
                .expect("a record");
            envelopes.push(event.envelope().expect("an envelope"));
            from = record.position + 1;
            read += 1;
        }
        if read == 0 {
            return envelopes;
        }
    }
}

fn reader(envelope: &EventEnvelope) -> String {
    match envelope
        .actor
        .as_ref()
        .and_then(|actor| actor.kind.as_ref())
    {
        Some(actor::Kind::Person(person)) => format!(
            "{} ({})",
            person.display_name,
            person
                .organisation
                .as_ref()
                .map(|o| o.ods_code.as_str())
                .unwrap_or_default()
        ),
        _ => String::new(),
    }
}

/// The reads in `log`: (rpc, purpose, reader, what was read).
async fn reads(
    backbone: &fixtures::Backbone,
    log: &str,
) -> Vec<(String, String, String, Vec<String>)> {
    envelopes(backbone, log)
        .await
        .iter()
        .filter(|envelope| contract::records::is::<RecordsRead>(&envelope.content_type))
        .map(|envelope| {
            let read = RecordsRead::decode(envelope.payload.as_slice()).expect("a read");
            let method = read.rpc.rsplit('/').next().unwrap_or_default().to_owned();
            let children = read.children.iter().map(|c| c.value.clone()).collect();
            (method, read.purpose, reader(envelope), children)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_is_recorded_before_the_answer_and_every_refusal_too() {
    let dir = tempfile::tempdir().expect("dir");
    let mut backbone = fixtures::spawn(dir.path()).await;
    fixtures::set_contacts(&mut backbone, "0300 000 0001", "0300 000 0002").await;
    let planned = fixtures::make_plan(&mut backbone).await;
    let the_child = child().expect("child").value;
    let why = "preparing the review conference";

    // Reads by the chair (the default client) through each service.
    let awaiting = backbone
        .referrals
        .list_awaiting_decision(referral::ListAwaitingDecisionRequest {
            local_authority_ods_code: "E09000999".into(),
            purpose: why.into(),
            ..Default::default()
        })
        .await
        .expect("list");
    drop(awaiting);
    backbone
        .conferences
        .get_conference(conference::GetConferenceRequest {
            conference_id: planned.conference.conference_id.clone(),
            min_token: None,
            purpose: why.into(),
        })
        .await
        .expect("get");
    backbone
        .registry
        .child_chronology(registry_wire::ChildChronologyRequest {
            local_id: None,
            nhs_number: child(),
            min_token: planned.token.clone(),
            purpose: why.into(),
        })
        .await
        .expect("chronology");
    let inbox = member_of(
        "E09000999",
        OrganisationKind::LocalAuthority,
        Role::TeamManager,
    );
    // A notification delivered is a read too, recorded before it goes.
    let mut stream = backbone
        .as_(&inbox)
        .notifications
        .subscribe(note::SubscribeRequest {
            subscriber: "audit".into(),
            recipient_ods_code: "E09000999".into(),
            purpose: "the council's inbox".into(),
            ..Default::default()
        })
        .await
        .expect("subscribe")
        .into_inner();
    let delivered = tokio::time::timeout(std::time::Duration::from_secs(10), stream.message())
        .await
        .expect("a notification in time")
        .expect("stream")
        .expect("not ended");
    drop(stream);

    let chair_reads = |log_reads: &[(String, String, String, Vec<String>)], method: &str| {
        log_reads.iter().any(|(rpc, purpose, who, _)| {
            rpc == method && purpose == why && who == "Test Chair (E09000999)"
        })
    };
    assert!(chair_reads(
        &reads(&backbone, "referral-intake").await,
        "ListAwaitingDecision"
    ));
    let conference_reads = reads(&backbone, "conference-scheduler").await;
    assert!(chair_reads(&conference_reads, "GetConference"));
    assert!(
        conference_reads
            .iter()
            .any(|(rpc, _, _, children)| rpc == "GetConference" && children.contains(&the_child)),
        "{conference_reads:?}"
    );
    let registry_reads = reads(&backbone, "plan-registry").await;
    assert!(
        chair_reads(&registry_reads, "ChildChronology"),
        "{registry_reads:?}"
    );
    assert!(
        reads(&backbone, "notification")
            .await
            .iter()
            .any(|(rpc, purpose, who, children)| rpc == "Subscribe"
                && purpose == "the council's inbox"
                && who == "Test Inbox (E09000999)"
                && delivered
                    .child_nhs_number
                    .as_ref()
                    .is_none_or(|child| children.contains(&child.value)))
    );

    // The council asks who read its children's records: every read above,
    // from every service, with who, why and which child.
    fixtures::lookup(&mut backbone, fixtures::nurse(), false, None).await;
    // Who looked is shown by name only to the council that owns the
    // child's record, and to each organisation for its own people.
    let gp = member_of(
        "Y99001",
        OrganisationKind::GpPractice,
        Role::GeneralPractitioner,
    );
    let seen_by_gp = fixtures::lookup(&mut backbone, gp, false, None).await;
    // Whether each access by `ods`'s people shows a name.
    let names_shown = |accesses: &[registry_wire::Access], ods: &str| -> Vec<bool> {
        accesses
            .iter()
            .filter(|access| {
                access
                    .organisation
                    .as_ref()
                    .is_some_and(|o| o.ods_code == ods)
            })
            .map(|access| !access.user_display_name.is_empty())
            .collect()
    };
    let named = |accesses: &[registry_wire::Access], ods: &str| {
        names_shown(accesses, ods).iter().all(|shown| *shown)
    };
    let unnamed = |accesses: &[registry_wire::Access], ods: &str| {
        names_shown(accesses, ods).iter().all(|shown| !*shown)
    };
    assert!(
        seen_by_gp.recent_accesses.iter().any(|a| a
            .organisation
            .as_ref()
            .is_some_and(|o| o.ods_code == "RXX01")),
        "{seen_by_gp:?}"
    );
    assert!(
        unnamed(&seen_by_gp.recent_accesses, "RXX01"),
        "{seen_by_gp:?}"
    );
    assert!(
        named(&seen_by_gp.recent_accesses, "Y99001"),
        "{seen_by_gp:?}"
    );
    let seen_by_council = fixtures::lookup(&mut backbone, chair(), true, None).await;
    assert!(
        named(&seen_by_council.recent_accesses, "RXX01"),
        "{seen_by_council:?}"
    );
    assert!(
        named(&seen_by_council.recent_accesses, "Y99001"),
        "{seen_by_council:?}"
    );
    let manager = member_of(
        "E09000999",
        OrganisationKind::LocalAuthority,
        Role::TeamManager,
    );
    let ask = |from: Option<prost_types::Timestamp>| {
        let mut registry = backbone.as_(&manager).registry;
        async move {
            registry
                .list_accesses(registry_wire::ListAccessesRequest {
                    local_authority_ods_code: "E09000999".into(),
                    from,
                    purpose: "the quarterly access audit".into(),
                    ..Default::default()
                })
                .await
        }
    };
    let wanted = [
        ("LookupChild", "Test Nurse"),
        ("ChildChronology", "Test Chair"),
        ("GetConference", "Test Chair"),
        ("ListAwaitingDecision", "Test Chair"),
        ("Subscribe", "Test Inbox"),
    ];
    let read_by = |report: &[registry_wire::AccessRecord], method: &str, who: &str| {
        report.iter().any(|access| {
            access.rpc.ends_with(&format!("/{method}"))
                && access
                    .reader
                    .as_ref()
                    .is_some_and(|r| r.display_name == who)
        })
    };
    let mut report = Vec::new();
    for _ in 0..100 {
        report = ask(None)
            .await
            .expect("the council's report")
            .into_inner()
            .accesses;
        if wanted
            .iter()
            .all(|(method, who)| read_by(&report, method, who))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for (method, who) in wanted {
        assert!(
            read_by(&report, method, who),
            "{method} by {who} in {report:?}"
        );
    }
    assert!(
        report
            .iter()
            .filter(|access| access.rpc.ends_with("/LookupChild"))
            .all(|access| access.children.iter().any(|c| c.value == the_child)),
        "{report:?}"
    );
    // A period after everything holds nothing; another council sees none of it.
    let later = ask(Some(prost_types::Timestamp {
        seconds: 4_102_444_800,
        nanos: 0,
    }))
    .await
    .expect("a later period")
    .into_inner();
    assert!(later.accesses.is_empty());
    let southgate = member_of(
        "E09000998",
        OrganisationKind::LocalAuthority,
        Role::TeamManager,
    );
    let refused = backbone
        .as_(&southgate)
        .registry
        .list_accesses(registry_wire::ListAccessesRequest {
            local_authority_ods_code: "E09000999".into(),
            ..Default::default()
        })
        .await
        .expect_err("another council's report");
    assert_eq!(refused.code(), Code::PermissionDenied);

    // Another council's social worker asking for the conference is refused,
    // and the refusal is a security event naming them, the RPC and the rule.
    let stranger = member_of(
        "E09000998",
        OrganisationKind::LocalAuthority,
        Role::SocialWorker,
    );
    let refused = backbone
        .as_(&stranger)
        .conferences
        .get_conference(conference::GetConferenceRequest {
            conference_id: planned.conference.conference_id.clone(),
            min_token: None,
            purpose: "curiosity".into(),
        })
        .await
        .expect_err("another council's conference");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let refusals: Vec<(AccessRefused, String)> = envelopes(&backbone, "conference-scheduler")
        .await
        .iter()
        .filter(|envelope| contract::records::is::<AccessRefused>(&envelope.content_type))
        .map(|envelope| {
            (
                AccessRefused::decode(envelope.payload.as_slice()).expect("a refusal"),
                reader(envelope),
            )
        })
        .collect();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    let (refusal, who) = &refusals[0];
    assert_eq!(who, "Test Inbox (E09000998)");
    assert!(refusal.rpc.ends_with("/GetConference"));
    assert_eq!(refusal.rule, refused.message());
    // The refused caller read nothing.
    assert!(
        !reads(&backbone, "conference-scheduler")
            .await
            .iter()
            .any(|(_, purpose, _, _)| purpose == "curiosity")
    );
}
