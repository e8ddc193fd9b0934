//! A council's go-live: its existing caseload loaded from a CSV file, every
//! row checked before anything is written, a file with a bad row writing
//! nothing, the same file loaded twice writing once, and the report's NHS
//! number match rate.

use contract::common::v1::{AbuseCategory, OrganisationKind, Role};
use contract::conference::v1::ConferenceKind;
use contract::registry::v1 as wire;
use tonic::Code;

use crate::fixtures::{self, Backbone, council, date, nhs, safeguarding_lead};

const HEADER: &str = "nhs_number,local_id,child_name,plan_type,category,start_date,next_review_due,lead_social_worker_name,lead_social_worker_phone,lead_social_worker_email,mother_nhs_number,expected_date_of_delivery\n";
/// A child on a plan, a looked-after child with no NHS number yet (a name
/// with a comma, quoted) and an unborn plan.
const ROWS: &str = "\
9990000042,,Robin Testchild,CPP,neglect,2026-03-02,2026-12-15,Pat Worker,0300 000 0101,,,
,LCS-77,\"Testchild, Jo\",LAC,,2025-11-03,,Sam Worker,0300 000 0102,sam@example.test,,
,,,UNBORN,emotional,2026-06-01,2026-12-15,Lee Worker,0300 000 0103,,9990000050,2027-01-10
";

/// The file sent as the CLI sends it: in chunks (here cut mid-line), the
/// first naming the council.
async fn import(
    backbone: &mut Backbone,
    who: Option<contract::common::v1::CallerIdentity>,
    text: &str,
) -> Result<wire::ImportCaseloadReport, tonic::Status> {
    let cut = text.len() / 2;
    let cut = (cut..text.len())
        .find(|at| text.is_char_boundary(*at))
        .unwrap_or(text.len());
    let chunks = vec![
        wire::ImportCaseloadChunk {
            local_authority: Some(council()),
            csv: text[..cut].to_owned(),
        },
        wire::ImportCaseloadChunk {
            local_authority: None,
            csv: text[cut..].to_owned(),
        },
    ];
    let mut registry = match who {
        Some(who) => backbone.as_(&who).registry,
        None => backbone.registry.clone(),
    };
    registry
        .import_caseload(futures_util::stream::iter(chunks))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_councils_caseload_loads_whole_or_not_at_all_once_with_its_match_rate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backbone = fixtures::spawn(dir.path()).await;

    // A file that cannot be read as a whole: refused, naming the column.
    let refused = import(&mut backbone, None, "nhs_no,plan_type\n9990000042,CPP\n")
        .await
        .expect_err("an unknown column");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("\"nhs_no\""), "{refused:?}");
    // Only the council itself loads its caseload.
    let elsewhere = fixtures::member_of(
        "E09000998",
        OrganisationKind::LocalAuthority,
        Role::SocialWorker,
    );
    let refused = import(&mut backbone, Some(elsewhere), &format!("{HEADER}{ROWS}"))
        .await
        .expect_err("another council");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    // One bad file: every bad row reported, and nothing written.
    let before = backbone.quiet_heads().await;
    let bad = format!(
        "{HEADER}{ROWS}\
9990000042,,Robin Testchild,CPP,neglect,2026-03-02,2026-12-15,Pat Worker,0300 000 0101,,,
9990000069,,,XYZ,neglect,2026-03-02,2026-12-15,Pat Worker,0300 000 0101,,,
9990000077,,,CPP,,15/03/2026,2026-12-15,,0300 000 0101,,,
9990000085,,,LAC,,2026-03-02,2026-12-15,Pat Worker,0300 000 0101,,,
"
    );
    let report = import(&mut backbone, None, &bad).await.expect("a report");
    assert!(!report.written);
    assert_eq!((report.rows, report.imported), (7, 0));
    let refusals: Vec<(u32, &str)> = report
        .refused
        .iter()
        .map(|refused| (refused.line, refused.column.as_str()))
        .collect();
    assert_eq!(
        refusals,
        [
            (5, ""),
            (6, "plan_type"),
            (7, "start_date"),
            (7, "lead_social_worker_name"),
            (7, "category"),
            (8, "next_review_due"),
        ],
        "{:#?}",
        report.refused
    );
    assert!(
        report.refused[0].reason.contains("line 2"),
        "{:?}",
        report.refused[0]
    );
    assert_eq!(backbone.quiet_heads().await, before, "nothing written");

    // The good file: written whole, with its match rate (the unborn plan
    // is the mother's, and not counted).
    let report = import(&mut backbone, None, &format!("{HEADER}{ROWS}"))
        .await
        .expect("imported");
    assert!(report.written && report.refused.is_empty(), "{report:#?}");
    assert_eq!(
        (report.rows, report.imported, report.already_imported),
        (3, 3, 0)
    );
    assert_eq!((report.children, report.with_nhs_number), (2, 1));
    assert!((report.match_rate_percent - 50.0).abs() < 1e-9);
    let token = report.token.clone();

    // Loaded again: nothing new is written.
    let again = import(&mut backbone, None, &format!("{HEADER}{ROWS}"))
        .await
        .expect("imported again");
    assert_eq!((again.imported, again.already_imported), (0, 3));

    // The plans answer lookups like any other, naming whom to call.
    let found = backbone
        .as_(&safeguarding_lead())
        .registry
        .lookup_child(wire::LookupChildRequest {
            nhs_number: nhs("9990000042"),
            purpose: "go-live check".into(),
            silent: true,
            min_token: token.clone(),
            ..wire::LookupChildRequest::default()
        })
        .await
        .expect("lookup")
        .into_inner();
    assert_eq!(found.plans.len(), 1);
    let plan = &found.plans[0];
    assert_eq!(plan.category(), AbuseCategory::Neglect);
    assert_eq!(plan.start_date, date(2026, 3, 2));
    assert_eq!(
        plan.lead_social_worker
            .as_ref()
            .map(|worker| worker.name.as_str()),
        Some("Pat Worker")
    );
    let mothers = backbone
        .as_(&safeguarding_lead())
        .registry
        .lookup_child(wire::LookupChildRequest {
            nhs_number: nhs("9990000050"),
            purpose: "go-live check".into(),
            silent: true,
            ..wire::LookupChildRequest::default()
        })
        .await
        .expect("lookup")
        .into_inner();
    assert_eq!(mothers.plans[0].r#type(), wire::PlanType::Unborn);
    assert_eq!(
        mothers.plans[0].expected_date_of_delivery,
        date(2027, 1, 10)
    );
    let unmatched = backbone
        .registry
        .list_unmatched_children(wire::ListUnmatchedChildrenRequest {
            local_authority_ods_code: "E09000999".into(),
            min_token: token,
        })
        .await
        .expect("unmatched")
        .into_inner();
    assert_eq!(unmatched.children.len(), 1);
    assert_eq!(unmatched.children[0].child_name, "Testchild, Jo");
    assert_eq!(
        unmatched.children[0]
            .local_id
            .as_ref()
            .map(|id| id.value.as_str()),
        Some("LCS-77")
    );

    // The review the council had booked is requested, due that day, and
    // the looked-after child has none.
    let plan_id = plan.plan_id.clone();
    let review = fixtures::open_conference(&mut backbone, |c| {
        c.kind() == ConferenceKind::Review && c.plan_id == plan_id
    })
    .await;
    assert_eq!(review.due, date(2026, 12, 15));
    assert_eq!(review.child_nhs_number, nhs("9990000042"));
}
