//! People by token: signed access tokens (JWT) from the identity providers
//! the backbone is configured to trust, modelled on NHS CIS2 (user id, name,
//! organisation, the selected role). Verified with `jsonwebtoken` against
//! each issuer's published keys; verified tokens are remembered until they
//! expire, so a client's thousandth request costs a lookup, not a
//! signature check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use contract::common::v1::Role;
use domain::OdsCode;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::caller::{Caller, organisation_kind_of};

/// What an access token says, as CIS2's claims do: `sub` the user's
/// stable id, `name` for the audit trail, `org` the ODS code of the
/// organisation they act for, `role` the issuer's code for the role they
/// selected at sign-on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    #[serde(default)]
    pub name: String,
    pub org: String,
    #[serde(default)]
    pub org_name: String,
    pub role: String,
}

/// One trusted identity provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The `iss` its tokens carry.
    pub issuer: String,
    /// The `aud` its tokens must carry for this backbone.
    pub audience: String,
    /// Its published signing keys: a JWKS file (mounted, refreshed by
    /// the deployment when the issuer rotates keys).
    pub jwks: std::path::PathBuf,
    /// Its role codes, each to the contract's role it means, e.g.
    /// `"R8000": "GENERAL_PRACTITIONER"`. A code not here is refused.
    pub roles: HashMap<String, String>,
}

/// Why a token was not accepted; each is `UNAUTHENTICATED` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

struct Issuer {
    keys: HashMap<String, (DecodingKey, Validation)>,
    roles: HashMap<String, Role>,
}

/// Verifies access tokens from the configured issuers.
pub struct Verifier {
    issuers: HashMap<String, Issuer>,
    skew: Duration,
    /// Tokens verified before, each with its caller and `nbf`, `exp`.
    verified: Mutex<HashMap<Arc<str>, (Caller, u64, u64)>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuers", &self.issuers.keys().collect::<Vec<_>>())
            .field("skew", &self.skew)
            .finish_non_exhaustive()
    }
}

/// How many verified tokens are remembered before the memory starts again:
/// enough for every user of a large trust at once.
const REMEMBERED: usize = 50_000;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

impl Verifier {
    /// Reads each issuer's keys once, now.
    pub fn new(issuers: &[IssuerConfig], skew: Duration) -> Result<Verifier, String> {
        let mut loaded = HashMap::new();
        for config in issuers {
            let text = std::fs::read_to_string(&config.jwks)
                .map_err(|error| format!("{}: {error}", config.jwks.display()))?;
            let set: JwkSet = serde_json::from_str(&text)
                .map_err(|error| format!("{}: not a JWKS: {error}", config.jwks.display()))?;
            let mut keys = HashMap::new();
            for jwk in &set.keys {
                let kid =
                    jwk.common.key_id.clone().ok_or_else(|| {
                        format!("{}: every key needs a kid", config.jwks.display())
                    })?;
                let algorithm = jwk
                    .common
                    .key_algorithm
                    .and_then(|alg| alg.to_string().parse::<Algorithm>().ok())
                    .ok_or_else(|| {
                        format!(
                            "{}: key {kid} names no signing algorithm",
                            config.jwks.display()
                        )
                    })?;
                if matches!(
                    algorithm,
                    Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
                ) {
                    return Err(format!(
                        "{}: key {kid} is a shared secret; only public keys are trusted",
                        config.jwks.display()
                    ));
                }
                let key = DecodingKey::from_jwk(jwk)
                    .map_err(|error| format!("{}: key {kid}: {error}", config.jwks.display()))?;
                let mut validation = Validation::new(algorithm);
                validation.set_issuer(&[&config.issuer]);
                validation.set_audience(&[&config.audience]);
                validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
                validation.validate_nbf = true;
                validation.leeway = skew.as_secs();
                keys.insert(kid, (key, validation));
            }
            let mut roles = HashMap::new();
            for (code, name) in &config.roles {
                let role = Role::from_str_name(&format!("ROLE_{name}"))
                    .filter(|role| *role != Role::Unspecified)
                    .ok_or_else(|| {
                        format!(
                            "issuer {}: role {code}: no contract role {name}",
                            config.issuer
                        )
                    })?;
                roles.insert(code.clone(), role);
            }
            loaded.insert(config.issuer.clone(), Issuer { keys, roles });
        }
        Ok(Verifier {
            issuers: loaded,
            skew,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// The person a token proves, if it is signed by a trusted issuer's key,
    /// for this backbone, and current.
    pub fn verify(&self, token: &str) -> Result<Caller, Refused> {
        let now = now();
        if let Some(caller) = self.remembered(token, now) {
            return Ok(caller);
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|error| Refused(format!("the access token cannot be read: {error}")))?;
        // Only to choose whose keys to check the signature with.
        #[derive(Deserialize)]
        struct Unverified {
            iss: String,
        }
        let claimed: Unverified = jsonwebtoken::dangerous::insecure_decode(token)
            .map(|data| data.claims)
            .map_err(|error| Refused(format!("the access token cannot be read: {error}")))?;
        let issuer = self.issuers.get(&claimed.iss).ok_or_else(|| {
            Refused(format!(
                "the access token's issuer {} is not trusted",
                claimed.iss
            ))
        })?;
        let kid = header
            .kid
            .ok_or_else(|| Refused("the access token names no key (kid)".into()))?;
        let (key, validation) = issuer.keys.get(&kid).ok_or_else(|| {
            Refused(format!(
                "the access token's key {kid} is not one of its issuer's"
            ))
        })?;
        let verified = jsonwebtoken::decode::<Claims>(token, key, validation)
            .map_err(|error| Refused(format!("the access token is not valid: {error}")))?
            .claims;
        let role = *issuer.roles.get(&verified.role).ok_or_else(|| {
            Refused(format!(
                "the access token's role {} is not mapped to a role here",
                verified.role
            ))
        })?;
        let organisation = OdsCode::parse(&verified.org)
            .map_err(|error| Refused(format!("the access token's org: {error}")))?;
        let caller = Caller {
            organisation,
            organisation_name: verified.org_name.trim().to_owned(),
            organisation_kind: organisation_kind_of(role),
            user_id: verified.sub.trim().to_owned(),
            display_name: verified.name.trim().to_owned(),
            role,
            care_setting: contract::common::v1::CareSetting::Unspecified,
        };
        if caller.user_id.is_empty() {
            return Err(Refused("the access token's sub is empty".into()));
        }
        self.remember(token, &caller, verified.nbf, verified.exp);
        Ok(caller)
    }

    /// A token verified before and still current: its caller.
    fn remembered(&self, token: &str, now: u64) -> Option<Caller> {
        let skew = self.skew.as_secs();
        let verified = self.verified.lock().ok()?;
        let (caller, nbf, exp) = verified.get(token)?;
        (now + skew >= *nbf && now < exp + skew).then(|| caller.clone())
    }

    fn remember(&self, token: &str, caller: &Caller, nbf: u64, exp: u64) {
        let Ok(mut verified) = self.verified.lock() else {
            return;
        };
        if verified.len() >= REMEMBERED {
            verified.clear();
        }
        verified.insert(token.into(), (caller.clone(), nbf, exp));
    }
}

/// Signs access tokens: the development realm's identity provider, and the
/// tests' and benchmarks' stand-in for CIS2 and the forces' and councils'
/// providers. Never part of a production backbone.
#[derive(Clone)]
pub struct Signer {
    pub issuer: String,
    pub audience: String,
    kid: String,
    key: EncodingKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The person a token is minted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub organisation: String,
    pub organisation_name: String,
    pub user_id: String,
    pub display_name: String,
    /// The issuer's role code.
    pub role: String,
}

impl Signer {
    /// A signer with an ES256 key (PKCS#8 DER), named `kid` in its JWKS.
    pub fn new(issuer: &str, audience: &str, kid: &str, pkcs8_der: &[u8]) -> Signer {
        Signer {
            issuer: issuer.into(),
            audience: audience.into(),
            kid: kid.into(),
            key: EncodingKey::from_ec_der(pkcs8_der),
        }
    }

    /// The JWKS a verifier is configured with.
    pub fn jwks(&self) -> Result<String, String> {
        let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&self.key, Algorithm::ES256)
            .map_err(|error| error.to_string())?;
        jwk.common.key_id = Some(self.kid.clone());
        serde_json::to_string_pretty(&JwkSet { keys: vec![jwk] }).map_err(|error| error.to_string())
    }

    /// A token for `person`, valid from now for `lifetime`.
    pub fn token(&self, person: &Person, lifetime: Duration) -> Result<String, String> {
        let now = now();
        self.sign(&Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: person.user_id.clone(),
            exp: now + lifetime.as_secs(),
            nbf: now,
            iat: now,
            name: person.display_name.clone(),
            org: person.organisation.clone(),
            org_name: person.organisation_name.clone(),
            role: person.role.clone(),
        })
    }

    /// Any claims, signed: for tests of what a verifier refuses.
    pub fn sign(&self, claims: &Claims) -> Result<String, String> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).map_err(|error| error.to_string())
    }
}
