//! The client subcommands against a real backbone: each runs the
//! `safeguard` binary as an operator would, and the case goes from a
//! school's referral to a plan, a lookup, a notification and the plan's
//! end, with the summaries and JSON the commands print.

use std::process::{Command, Output};
use std::time::Duration;

use safeguard::backbone::{self, Config};

struct Cli {
    server: String,
    /// The backbone's development realm, which the CLI acts in.
    realm: std::path::PathBuf,
}

/// Who runs each command.
const SCHOOL: &[&str] = &[
    "--as-org",
    "S999001",
    "--as-org-name",
    "Northgate Primary (test)",
    "--as-role",
    "designated-safeguarding-lead",
    "--as-setting",
    "education",
];
const MASH: &[&str] = &["--as-role", "mash-officer"];
const CHAIR: &[&str] = &["--as-role", "conference-chair"];
const NURSE: &[&str] = &[
    "--as-org",
    "RXX01",
    "--as-org-name",
    "Northgate General (test)",
    "--as-role",
    "unscheduled-care-clinician",
    "--as-setting",
    "emergency-department",
];
const COUNCIL_INBOX: &[&str] = &["--as-role", "team-manager"];

impl Cli {
    fn run(&self, who: &[&str], args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_safeguard"))
            .args(args)
            .args(who)
            .args(["--server", &self.server])
            .arg("--realm")
            .arg(&self.realm)
            .env_remove("SAFEGUARD_SERVER")
            .env_remove("SAFEGUARD_REALM")
            .output()
            .expect("run safeguard")
    }

    /// Runs a command that must succeed; returns what it printed.
    fn ok(&self, who: &[&str], args: &[&str]) -> String {
        let output = self.run(who, args);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "safeguard {args:?} failed: {}{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    fn json(&self, who: &[&str], args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.push("--json");
        let printed = self.ok(who, &args);
        serde_json::from_str(&printed).unwrap_or_else(|error| panic!("{error}: {printed}"))
    }
}

/// `safeguard verify --data-dir DIR`: a command of the operator's
/// machine, needing no server or identity.
fn verify(dir: &std::path::Path, flags: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_safeguard"))
        .arg("verify")
        .arg("--data-dir")
        .arg(dir)
        .args(flags)
        .output()
        .expect("run safeguard verify")
}

fn token_of(summary: &str) -> String {
    summary
        .lines()
        .find_map(|line| line.strip_prefix("token: "))
        .unwrap_or_else(|| panic!("no token in {summary}"))
        .to_owned()
}

fn text(value: &serde_json::Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {value}"))
        .to_owned()
}

#[test]
fn a_case_from_referral_to_plan_end_from_the_command_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let running = runtime
        .block_on(backbone::start(&Config {
            data_dir: dir.path().to_owned(),
            listen: "127.0.0.1:0".parse().expect("address"),
            settings: service_core::settings::Settings {
                checkpoint_seconds: 1,
                ..Default::default()
            },
            ..Config::default()
        }))
        .expect("backbone");
    let cli = Cli {
        server: format!("https://{}", running.address),
        realm: running.realm.clone().expect("a development realm"),
    };

    let health = cli.ok(&[], &["health"]);
    assert!(health.contains("SERVING"), "{health}");
    for service in [
        "referral-intake",
        "conference-scheduler",
        "plan-registry",
        "notification",
    ] {
        assert!(
            health.contains(&format!("{service}: serving; 0 record(s) quarantined")),
            "{health}"
        );
    }
    let health = cli.ok(
        &[],
        &["health", "--service", "safeguard.registry.v1.PlanRegistry"],
    );
    assert!(health.contains("SERVING"), "{health}");

    cli.ok(
        CHAIR,
        &[
            "plan",
            "contacts",
            "--local-authority",
            "E09000999:Northgate Council (test)",
            "--office-hours",
            "01632 960100",
            "--out-of-hours",
            "01632 960999",
        ],
    );

    // The school refers; the summary says when the decision is due.
    let referral = [
        "refer",
        "--nhs",
        "9990000018",
        "--given-name",
        "Alex",
        "--family-name",
        "Example",
        "--born",
        "2019-05-01",
        "--concerns",
        "bruising seen at school",
        "--category",
        "physical",
        "--consent",
        "not-sought",
        "--consent-reason",
        "seeking consent may place the child at risk",
        "--local-authority",
        "E09000999:Northgate Council (test)",
        "--referrer-kind",
        "school",
        "--key",
        "cli-test-1",
        "--received-at",
        "2026-01-05T09:30",
    ];
    let summary = cli.ok(SCHOOL, &referral);
    assert!(summary.contains("MASH decision due"), "{summary}");
    let submitted = cli.json(SCHOOL, &referral);
    let referral_id = text(&submitted, "referralId");
    assert!(
        summary.contains(&referral_id),
        "a retried submission is the same referral: {summary}"
    );

    let awaiting = cli.ok(
        MASH,
        &["referral", "awaiting", "--local-authority", "E09000999"],
    );
    assert!(awaiting.contains(&referral_id), "{awaiting}");

    let decided = cli.ok(
        MASH,
        &[
            "decide",
            "--referral",
            &referral_id,
            "--rag",
            "red",
            "--outcome",
            "strategy-discussion",
            "--rationale",
            "unexplained injuries",
            "--decided-at",
            "2026-01-05T15:00",
        ],
    );
    assert!(
        decided.contains("decided strategy discussion (red)"),
        "{decided}"
    );
    cli.ok(
        MASH,
        &[
            "strategy",
            "--referral",
            &referral_id,
            "--held-on",
            "2026-01-07",
            "--agency",
            "police:P99001:Northgate Police (test)",
            "--agency",
            "nhs-trust:RXX01",
            "--section-47",
        ],
    );
    let concluded = cli.ok(
        MASH,
        &[
            "section47",
            "--referral",
            &referral_id,
            "--concluded-on",
            "2026-01-09",
            "--conference-needed",
            "--rationale",
            "risk of significant harm",
        ],
    );
    assert!(concluded.contains("ICPC due 2026-01-28"), "{concluded}");
    let got = cli.json(
        MASH,
        &[
            "referral",
            "get",
            "--referral",
            &referral_id,
            "--after",
            &token_of(&concluded),
        ],
    );
    assert_eq!(
        got["referral"]["status"],
        "REFERRAL_STATUS_CONFERENCE_REQUESTED"
    );

    // The scheduler requests the ICPC by itself.
    let mut conference_id = None;
    for _ in 0..100 {
        let listed = cli.json(
            CHAIR,
            &[
                "conference",
                "list",
                "--local-authority",
                "E09000999",
                "--as-of",
                "2026-01-12",
            ],
        );
        if let Some(first) = listed["conferences"].as_array().and_then(|c| c.first()) {
            conference_id = Some(text(first, "conferenceId"));
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let conference = conference_id.expect("the ICPC was requested");
    let id = conference.as_str();
    cli.ok(
        CHAIR,
        &[
            "conference",
            "invite",
            "--conference",
            id,
            "--add",
            "police:P99001:Northgate Police (test)",
            "--add",
            "gp:Y99001:Northgate Surgery (test)",
        ],
    );
    let scheduled = cli.ok(
        CHAIR,
        &[
            "conference",
            "schedule",
            "--conference",
            id,
            "--at",
            "2026-01-20T10:00",
            "--venue",
            "Civic Centre",
        ],
    );
    assert!(
        scheduled.contains("2026-01-20 10:00 at Civic Centre"),
        "{scheduled}"
    );
    let replied = cli.ok(
        CHAIR,
        &[
            "conference",
            "reply",
            "--conference",
            id,
            "--invitee",
            "police:P99001",
            "--response",
            "attending",
        ],
    );
    assert!(replied.contains("P99001"), "{replied}");
    assert!(replied.contains("attending"), "{replied}");
    let reported = cli.ok(
        CHAIR,
        &[
            "conference",
            "report",
            "--conference",
            id,
            "--invitee",
            "gp:Y99001",
            "--text",
            "Seen twice with minor injuries.",
            "--author",
            "Dr Test Practitioner",
            "--written-on",
            "2026-01-16",
        ],
    );
    assert!(reported.contains("report received"), "{reported}");
    cli.ok(
        CHAIR,
        &[
            "conference",
            "attend",
            "--conference",
            id,
            "--held-on",
            "2026-01-20",
            "--present",
            "social-care:E09000999",
            "--present",
            "police:P99001",
            "--present",
            "gp:Y99001",
        ],
    );
    let outcome = cli.ok(
        CHAIR,
        &[
            "conference",
            "outcome",
            "--conference",
            id,
            "--plan",
            "--category",
            "physical",
        ],
    );
    assert!(outcome.contains("held 2026-01-20"), "{outcome}");
    let held = cli.json(CHAIR, &["conference", "get", "--conference", id]);
    let plan_id = text(&held["conference"], "planId");

    // The nurse, passing the chair's token, sees the plan at once, without
    // its category, and whom to call.
    let seen = cli.ok(
        NURSE,
        &[
            "lookup",
            "--nhs",
            "9990000018",
            "--purpose",
            "unscheduled care attendance",
            "--after",
            &token_of(&outcome),
        ],
    );
    assert!(seen.contains(&plan_id), "{seen}");
    assert!(
        seen.contains("child protection for 9990000018 since 2026-01-20"),
        "{seen}"
    );
    assert!(!seen.contains("physical"), "{seen}");
    assert!(seen.contains("01632 960999 out of hours"), "{seen}");

    // The council is told the child was seen, and acknowledges it.
    let told = cli.ok(
        COUNCIL_INBOX,
        &["subscribe", "--kind", "access", "--count", "1"],
    );
    assert!(told.contains("access"), "{told}");
    let sequence = told
        .trim_start_matches('#')
        .split_whitespace()
        .next()
        .expect("sequence")
        .to_owned();
    cli.ok(COUNCIL_INBOX, &["acknowledge", "--sequence", &sequence]);

    // And the council can ask who read its children's records, and why.
    let accesses = cli.ok(
        COUNCIL_INBOX,
        &[
            "accesses",
            "--local-authority",
            "E09000999",
            "--purpose",
            "monthly access audit",
        ],
    );
    assert!(
        accesses.contains("LookupChild for \"unscheduled care attendance\": 9990000018"),
        "{accesses}"
    );

    let chronology = cli.ok(CHAIR, &["chronology", "--nhs", "9990000018"]);
    for expected in [
        "referral received",
        "MASH decision",
        "plan started",
        "record viewed",
    ] {
        assert!(chronology.contains(expected), "{expected}: {chronology}");
    }

    let ended = cli.ok(
        CHAIR,
        &[
            "plan",
            "end",
            "--plan",
            &plan_id,
            "--end-date",
            "2026-06-01",
            "--reason",
            "left-the-country",
        ],
    );
    assert!(
        ended.contains("ended 2026-06-01 (left the country)"),
        "{ended}"
    );

    // A conference by hand: scheduled, moved, called off; its due date stays.
    let created = cli.json(
        CHAIR,
        &[
            "conference",
            "create",
            "--kind",
            "transfer-in",
            "--nhs",
            "9990000026",
            "--local-authority",
            "E09000999",
            "--clock-starts",
            "2026-02-02",
        ],
    );
    let moved_id = text(&created["conference"], "conferenceId");
    let due = created["conference"]["due"].clone();
    cli.ok(
        CHAIR,
        &[
            "conference",
            "schedule",
            "--conference",
            &moved_id,
            "--at",
            "2026-02-10T09:30",
            "--venue",
            "Room 1",
        ],
    );
    cli.ok(
        CHAIR,
        &[
            "conference",
            "rearrange",
            "--conference",
            &moved_id,
            "--at",
            "2026-02-12T09:30",
            "--venue",
            "Room 2",
            "--reason",
            "chair unwell",
        ],
    );
    let cancelled = cli.json(
        CHAIR,
        &[
            "conference",
            "cancel",
            "--conference",
            &moved_id,
            "--reason",
            "family moved away",
        ],
    );
    assert_eq!(
        cancelled["conference"]["status"],
        "CONFERENCE_STATUS_CANCELLED"
    );
    assert_eq!(cancelled["conference"]["due"], due);

    // Plans recorded directly.
    let unborn = cli.json(
        CHAIR,
        &[
            "plan",
            "unborn",
            "--mother-nhs",
            "9990000026",
            "--expected",
            "2026-03-01",
            "--category",
            "neglect",
            "--start",
            "2026-01-05",
            "--local-authority",
            "E09000999",
            "--social-worker",
            "Sam Worker (test):01632 960200",
        ],
    );
    let unborn_id = text(&unborn["plan"], "planId");
    let linked = cli.ok(
        CHAIR,
        &[
            "plan",
            "link-birth",
            "--plan",
            &unborn_id,
            "--baby-nhs",
            "9990000034",
            "--born-on",
            "2026-02-27",
        ],
    );
    assert!(linked.contains("unborn for 9990000034"), "{linked}");
    assert!(
        linked.contains("lead social worker: Sam Worker (test)"),
        "{linked}"
    );
    let looked_after = cli.ok(
        CHAIR,
        &[
            "plan",
            "looked-after",
            "--nhs",
            "9990000042",
            "--start",
            "2026-01-05",
            "--local-authority",
            "E09000999",
        ],
    );
    assert!(
        looked_after.contains("looked after for 9990000042"),
        "{looked_after}"
    );
    let transferred = cli.ok(
        CHAIR,
        &[
            "plan",
            "transfer-in",
            "--nhs",
            "9990000050",
            "--category",
            "emotional",
            "--start",
            "2026-01-05",
            "--local-authority",
            "E09000999",
            "--previous-local-authority",
            "E09000998:Southgate Council (test)",
        ],
    );
    assert!(transferred.contains("(emotional)"), "{transferred}");

    // Go-live: a caseload file, refused whole for one bad row, then loaded;
    // its child without an NHS number listed, matched and looked up.
    let caseload = dir.path().join("caseload.csv");
    let rows = "plan_type,local_id,child_name,start_date,lead_social_worker_name,lead_social_worker_phone\n\
                LAC,UASC-3,Ali Testchild,2026-01-05,Sam Worker,01632 960200\n";
    std::fs::write(
        &caseload,
        format!("{rows}LAC,,,2026-01-05,Sam Worker,01632 960200\n"),
    )
    .expect("write the file");
    let refused = cli.run(
        CHAIR,
        &[
            "plan",
            "import",
            caseload.to_str().expect("a path"),
            "--local-authority",
            "E09000999",
        ],
    );
    assert!(!refused.status.success());
    let printed = String::from_utf8_lossy(&refused.stdout);
    assert!(
        printed.contains("line 3: nhs_number: is required"),
        "{printed}"
    );
    assert!(printed.contains("nothing written"), "{printed}");
    std::fs::write(&caseload, rows).expect("write the file");
    let imported = cli.ok(
        CHAIR,
        &[
            "plan",
            "import",
            caseload.to_str().expect("a path"),
            "--local-authority",
            "E09000999",
        ],
    );
    assert!(imported.contains("1 rows: 1 imported"), "{imported}");
    assert!(
        imported.contains("with an NHS number: 0 (0.0%)"),
        "{imported}"
    );
    let unmatched = cli.ok(
        CHAIR,
        &["plan", "unmatched", "--local-authority", "E09000999"],
    );
    assert!(unmatched.contains("UASC-3 Ali Testchild"), "{unmatched}");
    let by_local = cli.ok(
        CHAIR,
        &[
            "lookup",
            "--local-id",
            "E09000999:UASC-3",
            "--purpose",
            "matching",
            "--silent",
        ],
    );
    assert!(by_local.contains("looked after for -"), "{by_local}");
    cli.ok(
        CHAIR,
        &[
            "plan",
            "link-nhs",
            "--local-id",
            "UASC-3",
            "--nhs",
            "9990000069",
            "--local-authority",
            "E09000999",
        ],
    );
    let matched = cli.ok(
        NURSE,
        &[
            "lookup",
            "--nhs",
            "9990000069",
            "--purpose",
            "unscheduled care attendance",
        ],
    );
    assert!(matched.contains("looked after for 9990000069"), "{matched}");

    // Bad input: the service's error, naming the field, and a failure exit.
    let refused = cli.run(
        NURSE,
        &["lookup", "--nhs", "1234567890", "--purpose", "attendance"],
    );
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("InvalidArgument"), "{said}");
    assert!(said.contains("nhs_number"), "{said}");
    let refused = cli.run(
        CHAIR,
        &[
            "decide",
            "--referral",
            &referral_id,
            "--rag",
            "purple",
            "--outcome",
            "early-help",
            "--rationale",
            "x",
        ],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--rag: unknown value"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // Lookups enough that the registry's records span many of sled's pages.
    for index in 0..40 {
        cli.ok(
            NURSE,
            &[
                "lookup",
                "--nhs",
                "9990000018",
                "--purpose",
                &format!("attendance-check-{index:02}"),
            ],
        );
    }
    // Each service signs a checkpoint of its log once a second it wrote.
    std::thread::sleep(Duration::from_millis(2500));
    // An auditor checks the logs while the backbone runs, on copies, and
    // the checkpoints against the services' certificate.
    let signers = format!("--signers={}", cli.realm.join("server.pem").display());
    let output = verify(dir.path(), &[&signers]);
    let verified = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{verified}");
    assert_eq!(verified.matches(": intact: ").count(), 4, "{verified}");
    let registry_line = verified
        .lines()
        .find(|line| line.contains("plan-registry"))
        .expect("the registry's log");
    assert!(
        registry_line.contains("their signatures checked")
            && !registry_line.contains(" 0 checkpoint(s)"),
        "{registry_line}"
    );
    // Against a certificate that is not the services', they fail.
    let stranger = tempfile::tempdir().expect("dir");
    trust::Realm::open_or_create(stranger.path()).expect("another realm");
    let wrong = format!("--signers={}", stranger.path().join("server.pem").display());
    let output = verify(dir.path(), &[&wrong]);
    let refused = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{refused}");
    assert!(refused.contains("signature is not"), "{refused}");

    runtime.block_on(running.stop()).expect("stop");

    // One flipped byte in the registry's files is found, at its record.
    let registry_log = dir.path().join(registry::LOG);
    let purpose = b"attendance-check-20";
    let looked_up_at = {
        // sled lets go of its files a moment after the last handle closes.
        let started = std::time::Instant::now();
        let log = loop {
            match eventlog::EventLog::open(eventlog::Options::new(&registry_log)) {
                Err(eventlog::Error::Storage(message))
                    if message.contains("could not acquire lock")
                        && started.elapsed() < Duration::from_secs(10) =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                opened => break opened.expect("open"),
            }
        };
        let records = log.read_all(0, 10_000).expect("read");
        let position = records
            .iter()
            .find(|event| {
                event
                    .record()
                    .windows(purpose.len())
                    .any(|window| window == purpose)
            })
            .expect("the lookup is in the registry's log")
            .position();
        runtime.block_on(log.close()).expect("close");
        position
    };
    let file = registry_log.join("db");
    let mut bytes = std::fs::read(&file).expect("read db file");
    let at = bytes
        .windows(purpose.len())
        .position(|window| window == purpose)
        .expect("the lookup is in the file, first as it was written");
    bytes[at + 3] ^= 0x01;
    std::fs::write(&file, &bytes).expect("write db file");
    let output = verify(dir.path(), &[]);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{printed}");
    assert!(
        printed.contains(&format!(
            "NOT INTACT: corrupt record at position {looked_up_at}:"
        )),
        "{printed}"
    );
    assert_eq!(printed.matches(": intact: ").count(), 3, "{printed}");
    assert_eq!(
        std::fs::read(&file).expect("db file"),
        bytes,
        "verify changed nothing"
    );
}
