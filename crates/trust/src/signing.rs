//! Proof that a record came from its producer's log: each service signs
//! (its producer name, a position, the chain hash there) with its service
//! key, and whoever follows it checks the signature against the
//! certificate configured for that producer. The chain hash commits to the
//! record and to every record before it, so one signature vouches for the
//! whole history up to that position. ECDSA P-256 with SHA-256 (`ring`),
//! the key type of the backbone's certificates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, UnparsedPublicKey,
};

/// What is signed, before the producer, position and hash: so a signature
/// made for this purpose can never be taken for one made for another.
const CONTEXT: &[u8] = b"safeguard event record v1\0";

/// The producer name that stands for every producer in `event_signers`
/// (a development realm, whose services share one certificate).
pub const ANY_PRODUCER: &str = "*";

fn message(producer: &str, position: u64, hash: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(CONTEXT.len() + producer.len() + 1 + 8 + hash.len());
    message.extend_from_slice(CONTEXT);
    message.extend_from_slice(producer.as_bytes());
    message.push(0);
    message.extend_from_slice(&position.to_be_bytes());
    message.extend_from_slice(hash);
    message
}

/// Signs this process's records with its service key.
pub struct EventSigner {
    key: EcdsaKeyPair,
    random: SystemRandom,
}

impl std::fmt::Debug for EventSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSigner").finish_non_exhaustive()
    }
}

impl EventSigner {
    /// From a PKCS#8 private key (PEM), ECDSA P-256.
    pub fn from_pem(pem: &str) -> Result<EventSigner, String> {
        let der = rcgen::KeyPair::from_pem(pem)
            .map_err(|error| format!("the signing key cannot be read: {error}"))?
            .serialized_der()
            .to_vec();
        let random = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &random)
            .map_err(|error| format!("the signing key is not an ECDSA P-256 key: {error}"))?;
        Ok(EventSigner { key, random })
    }

    pub fn from_file(path: &Path) -> Result<EventSigner, String> {
        EventSigner::from_pem(&read(path)?).map_err(|error| format!("{}: {error}", path.display()))
    }

    /// The signature of `producer`'s record at `position` with chain `hash`.
    pub fn sign(&self, producer: &str, position: u64, hash: &[u8]) -> Result<Vec<u8>, String> {
        self.key
            .sign(&self.random, &message(producer, position, hash))
            .map(|signature| signature.as_ref().to_vec())
            .map_err(|_| "signing failed".to_owned())
    }
}

/// The public keys that sign each producer's records.
#[derive(Clone, Default)]
pub struct EventKeys {
    keys: Arc<BTreeMap<String, Vec<u8>>>,
}

impl std::fmt::Debug for EventKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.keys.keys()).finish()
    }
}

impl EventKeys {
    /// From a map of producer (or [`ANY_PRODUCER`]) to the certificate
    /// (PEM) whose key signs its records.
    pub fn from_certificates(
        certificates: &BTreeMap<String, PathBuf>,
    ) -> Result<EventKeys, String> {
        let mut keys = BTreeMap::new();
        for (producer, path) in certificates {
            let key = public_key(&read(path)?).map_err(|error| {
                format!("event_signers: {producer}: {}: {error}", path.display())
            })?;
            keys.insert(producer.clone(), key);
        }
        Ok(EventKeys {
            keys: Arc::new(keys),
        })
    }

    /// From certificates in memory (PEM), for tests and benchmarks.
    pub fn from_pems(certificates: &[(&str, &str)]) -> Result<EventKeys, String> {
        let mut keys = BTreeMap::new();
        for (producer, pem) in certificates {
            keys.insert((*producer).to_owned(), public_key(pem)?);
        }
        Ok(EventKeys {
            keys: Arc::new(keys),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether `signature` is `producer`'s over its record at `position`
    /// with chain `hash`; says why not.
    pub fn verify(
        &self,
        producer: &str,
        position: u64,
        hash: &[u8],
        signature: &[u8],
    ) -> Result<(), String> {
        let key = self
            .keys
            .get(producer)
            .or_else(|| self.keys.get(ANY_PRODUCER))
            .ok_or_else(|| format!("no key is configured for the producer {producer}"))?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key)
            .verify(&message(producer, position, hash), signature)
            .map_err(|_| format!("the signature is not {producer}'s for position {position}"))
    }
}

/// The ECDSA P-256 public key (an uncompressed point) of a certificate.
fn public_key(pem: &str) -> Result<Vec<u8>, String> {
    use x509_parser::public_key::PublicKey;
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|error| format!("not a PEM certificate: {error}"))?;
    let certificate = pem
        .parse_x509()
        .map_err(|error| format!("the certificate cannot be read: {error}"))?;
    let key = certificate.public_key();
    match key.parsed() {
        Ok(PublicKey::EC(point)) if point.data().len() == 65 => {
            Ok(key.subject_public_key.data.to_vec())
        }
        _ => Err("its key is not ECDSA P-256".into()),
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_and_certificate() -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let certificate = rcgen::CertificateParams::new(vec!["signer.test".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("certificate");
        (key.serialize_pem(), certificate.pem())
    }

    #[test]
    fn a_signature_holds_for_its_producer_position_and_hash_only() {
        let (key, certificate) = key_and_certificate();
        let signer = EventSigner::from_pem(&key).expect("signer");
        let keys = EventKeys::from_pems(&[("referral-intake", &certificate)]).expect("keys");
        let hash = [7_u8; 32];
        let signature = signer.sign("referral-intake", 12, &hash).expect("sign");
        assert_eq!(
            keys.verify("referral-intake", 12, &hash, &signature),
            Ok(())
        );
        assert!(
            keys.verify("referral-intake", 13, &hash, &signature)
                .is_err()
        );
        assert!(
            keys.verify("referral-intake", 12, &[8; 32], &signature)
                .is_err()
        );
        let unknown = keys.verify("plan-registry", 12, &hash, &signature);
        assert!(unknown.is_err_and(|reason| reason.contains("no key")));
        let (other_key, _) = key_and_certificate();
        let forged = EventSigner::from_pem(&other_key)
            .expect("signer")
            .sign("referral-intake", 12, &hash)
            .expect("sign");
        assert!(keys.verify("referral-intake", 12, &hash, &forged).is_err());
    }

    #[test]
    fn any_producer_stands_for_every_producer() {
        let (key, certificate) = key_and_certificate();
        let keys = EventKeys::from_pems(&[(ANY_PRODUCER, &certificate)]).expect("keys");
        let signature = EventSigner::from_pem(&key)
            .expect("signer")
            .sign("plan-registry-2", 0, &[0; 32])
            .expect("sign");
        assert_eq!(
            keys.verify("plan-registry-2", 0, &[0; 32], &signature),
            Ok(())
        );
    }
}
