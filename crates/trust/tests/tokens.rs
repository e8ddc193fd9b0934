//! What the token verifier accepts and refuses, with keys from a real
//! development realm on disk.

use std::time::Duration;

use trust::token::{Claims, Person, Signer, Verifier};
use trust::{Realm, Trust};

fn person() -> Person {
    Person {
        organisation: "Y12345".into(),
        organisation_name: "Test practice".into(),
        user_id: "gp-0001".into(),
        display_name: "Test GP".into(),
        role: "GENERAL_PRACTITIONER".into(),
    }
}

fn claims() -> Claims {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    Claims {
        iss: trust::realm::ISSUER.into(),
        aud: trust::realm::AUDIENCE.into(),
        sub: "gp-0001".into(),
        exp: now + 300,
        nbf: now,
        iat: now,
        name: "Test GP".into(),
        org: "Y12345".into(),
        org_name: String::new(),
        role: "GENERAL_PRACTITIONER".into(),
    }
}

#[test]
fn a_realm_token_is_accepted_and_every_wrong_one_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (realm, created) = Realm::open_or_create(&dir.path().join("realm")).expect("realm");
    assert!(created);
    let (_, again) = Realm::open_or_create(&dir.path().join("realm")).expect("realm");
    assert!(!again, "a realm is made once");
    let trust = Trust::load(&realm.config()).expect("the realm's config loads");
    let verifier = trust.verifier();

    let token = realm
        .token(&person(), Duration::from_secs(60))
        .expect("token");
    let caller = verifier.verify(&token).expect("accepted");
    assert_eq!(caller.organisation.to_string(), "Y12345");
    assert_eq!(caller.role, contract::common::v1::Role::GeneralPractitioner);
    assert_eq!(
        caller.organisation_kind,
        contract::common::v1::OrganisationKind::GpPractice
    );
    // Remembered: the same answer again.
    assert_eq!(verifier.verify(&token).expect("accepted"), caller);

    let signer = realm.signer();
    let base = claims();
    let other_key = rcgen::KeyPair::generate().expect("key");
    let impostor = Signer::new(
        trust::realm::ISSUER,
        trust::realm::AUDIENCE,
        "development-1",
        other_key.serialized_der(),
    );
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            signer
                .sign(&Claims {
                    exp: base.nbf - 120,
                    nbf: base.nbf - 600,
                    ..base.clone()
                })
                .expect("sign"),
            "ExpiredSignature",
        ),
        (
            "not yet valid",
            signer
                .sign(&Claims {
                    nbf: base.nbf + 600,
                    exp: base.exp + 600,
                    ..base.clone()
                })
                .expect("sign"),
            "ImmatureSignature",
        ),
        (
            "wrong audience",
            signer
                .sign(&Claims {
                    aud: "another-service".into(),
                    ..base.clone()
                })
                .expect("sign"),
            "InvalidAudience",
        ),
        (
            "untrusted issuer",
            signer
                .sign(&Claims {
                    iss: "https://elsewhere.example".into(),
                    ..base.clone()
                })
                .expect("sign"),
            "issuer https://elsewhere.example is not trusted",
        ),
        (
            "unmapped role",
            signer
                .sign(&Claims {
                    role: "R9999".into(),
                    ..base.clone()
                })
                .expect("sign"),
            "role R9999 is not mapped",
        ),
        (
            "signed by another key",
            impostor.sign(&base).expect("sign"),
            "InvalidSignature",
        ),
        ("not a token", "not.a.token".into(), "cannot be read"),
    ];
    for (case, token, expected) in cases {
        let refused = verifier.verify(&token).expect_err(case);
        assert!(
            refused.0.contains(expected),
            "{case}: {refused} should say {expected}"
        );
    }
}

#[test]
fn a_production_role_mapping_turns_an_issuers_codes_into_the_contracts_roles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = rcgen::KeyPair::generate().expect("key");
    let signer = Signer::new(
        "https://cis2.example",
        "safeguard-prod",
        "k1",
        key.serialized_der(),
    );
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, signer.jwks().expect("jwks")).expect("write");
    let issuer = trust::token::IssuerConfig {
        issuer: "https://cis2.example".into(),
        audience: "safeguard-prod".into(),
        jwks,
        roles: [("R8000".to_owned(), "UNSCHEDULED_CARE_CLINICIAN".to_owned())].into(),
    };
    let verifier =
        Verifier::new(std::slice::from_ref(&issuer), Duration::from_secs(5)).expect("verifier");
    let token = signer
        .token(
            &Person {
                role: "R8000".into(),
                ..person()
            },
            Duration::from_secs(60),
        )
        .expect("token");
    assert_eq!(
        verifier.verify(&token).expect("accepted").role,
        contract::common::v1::Role::UnscheduledCareClinician
    );
    let unknown = trust::token::IssuerConfig {
        roles: [("R1".to_owned(), "WIZARD".to_owned())].into(),
        ..issuer
    };
    let refused = Verifier::new(&[unknown], Duration::from_secs(5)).expect_err("no such role");
    assert!(refused.contains("no contract role WIZARD"), "{refused}");
}
