//! Stopping the backbone mid-case and starting it again on the same data:
//! every view is rebuilt from the logs, equal to what it was, and the case
//! carries on.

use contract::common::v1::{
    CallerIdentity, CareSetting, NhsNumber, Organisation, OrganisationKind, Role,
};
use contract::conference::v1::ListConferencesRequest;
use contract::registry::v1::{ChildChronologyRequest, LookupChildRequest};

use crate::spawn_backbone;

fn social_worker() -> CallerIdentity {
    CallerIdentity {
        organisation: Some(Organisation {
            ods_code: "E09000999".into(),
            name: "London Borough of Northgate (demo)".into(),
            kind: OrganisationKind::LocalAuthority.into(),
        }),
        user_id: "sw-0001".into(),
        display_name: "Test Social Worker".into(),
        role: Role::SocialWorker.into(),
        care_setting: CareSetting::SocialCare.into(),
    }
}

/// What the backbone shows of a child: its plans (by a silent lookup), its
/// chronology, and the council's open conferences.
async fn views(
    backbone: &crate::Backbone,
    child: &str,
) -> (
    Vec<contract::registry::v1::Plan>,
    Vec<contract::registry::v1::ChronologyEntry>,
    Vec<contract::conference::v1::Conference>,
) {
    let clients = backbone
        .agencies()
        .clients(&social_worker())
        .expect("credentials");
    let (mut registry, mut conferences) = (clients.registry, clients.conferences);
    let nhs = Some(NhsNumber {
        value: child.into(),
    });
    let plans = registry
        .lookup_child(LookupChildRequest {
            nhs_number: nhs.clone(),
            purpose: "restart check".into(),
            silent: true,
            ..LookupChildRequest::default()
        })
        .await
        .expect("lookup")
        .into_inner();
    let chronology = registry
        .child_chronology(ChildChronologyRequest {
            local_id: None,
            purpose: "a test of the backbone".into(),
            nhs_number: nhs,
            min_token: plans.token.clone(),
        })
        .await
        .expect("chronology")
        .into_inner()
        .entries;
    let open = conferences
        .list_conferences(ListConferencesRequest {
            local_authority_ods_code: "E09000999".into(),
            ..ListConferencesRequest::default()
        })
        .await
        .expect("list")
        .into_inner()
        .conferences;
    (plans.plans, chronology, open)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_are_rebuilt_from_the_logs_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let backbone = spawn_backbone(dir.path()).await;
    let report = safeguard::demo::run(&backbone.agencies(), true, crate::today())
        .await
        .expect("demo");
    let (plans, chronology, open) = views(&backbone, &report.child).await;
    backbone.running.stop().await.expect("stop");

    let backbone = spawn_backbone(dir.path()).await;
    let (plans_after, chronology_after, open_after) = views(&backbone, &report.child).await;
    assert_eq!(plans_after, plans);
    // The restart check's own lookup is the one new entry.
    assert_eq!(chronology_after[..chronology.len()], chronology[..]);
    assert_eq!(chronology_after.len(), chronology.len() + 1);
    assert_eq!(open_after, open);

    // And the case carries on: a second demo case on the same backbone.
    let second = safeguard::demo::run(&backbone.agencies(), true, crate::today())
        .await
        .expect("demo after restart");
    assert_ne!(second.child, report.child);
    backbone.running.stop().await.expect("stop");
}
