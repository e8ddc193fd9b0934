//! How a certificate names who holds it: one subject alternative name URI,
//! `urn:ods:<ODS code>` for an agency's system, `urn:safeguard:service:<name>`
//! for one of the backbone's own services.

use domain::OdsCode;

const ORGANISATION: &str = "urn:ods:";
const SERVICE: &str = "urn:safeguard:service:";

/// The SAN URI naming an organisation's system.
pub fn organisation_uri(ods: &OdsCode) -> String {
    format!("{ORGANISATION}{ods}")
}

/// The SAN URI naming one of the backbone's services.
pub fn service_uri(name: &str) -> String {
    format!("{SERVICE}{name}")
}

/// Who a SAN URI names, if it is one of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    Organisation(OdsCode),
    Service(String),
}

pub fn parse(uri: &str) -> Option<Named> {
    if let Some(code) = uri.strip_prefix(ORGANISATION) {
        return OdsCode::parse(code).ok().map(Named::Organisation);
    }
    let name = uri.strip_prefix(SERVICE)?;
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    valid.then(|| Named::Service(name.to_owned()))
}

/// Who a verified leaf certificate (DER) names: exactly one of our SAN URIs,
/// or none (a certificate naming two parties names nobody).
pub fn of_certificate(der: &[u8]) -> Result<Named, String> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, certificate) = X509Certificate::from_der(der)
        .map_err(|error| format!("the client certificate cannot be read: {error}"))?;
    let names = certificate
        .subject_alternative_name()
        .map_err(|error| format!("the client certificate's names cannot be read: {error}"))?;
    let mut ours = names
        .into_iter()
        .flat_map(|extension| extension.value.general_names.iter())
        .filter_map(|name| match name {
            GeneralName::URI(uri) => parse(uri),
            _ => None,
        });
    match (ours.next(), ours.next()) {
        (Some(named), None) => Ok(named),
        (None, _) => Err(format!(
            "the client certificate names no organisation ({ORGANISATION}<ODS code>) or service ({SERVICE}<name>)"
        )),
        (Some(_), Some(_)) => Err("the client certificate names more than one party".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organisations_and_services_are_told_apart_and_anything_else_is_nobody() {
        let ods = OdsCode::parse("Y12345").expect("ods");
        assert_eq!(
            parse(&organisation_uri(&ods)),
            Some(Named::Organisation(ods))
        );
        assert_eq!(
            parse(&service_uri("plan-registry")),
            Some(Named::Service("plan-registry".into()))
        );
        for nobody in [
            "urn:ods:",
            "urn:ods:not valid",
            "urn:safeguard:service:",
            "urn:safeguard:service:Bad Name",
            "https://example.org",
        ] {
            assert_eq!(parse(nobody), None, "{nobody}");
        }
    }
}
