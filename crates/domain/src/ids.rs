//! Identifiers that arrive as text and must be valid before anything else
//! happens: NHS numbers and ODS organisation codes.

use std::fmt;

/// Why an identifier was refused; the message is fit to show the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("an NHS number has 10 digits, got {0:?}")]
    NhsNumberLength(String),
    #[error("the check digit of NHS number {0} does not match")]
    NhsNumberCheckDigit(String),
    #[error("an ODS code is 3 to 12 letters and digits, got {0:?}")]
    OdsCode(String),
    #[error("a local identifier is 1 to 64 letters, digits, '-', '_', '.' or '/', got {0:?}")]
    LocalChildId(String),
}

/// An NHS number: ten digits, the last a modulus-11 check digit over the
/// first nine (weights 10 down to 2). Numbers starting 999 are a reserved
/// test range, valid but never issued to a person.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NhsNumber([u8; 10]);

impl NhsNumber {
    /// Accepts the ten digits, optionally grouped 3-3-4 by spaces or hyphens
    /// as they are printed on letters and shown by clinical systems.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let trimmed = text.trim();
        let mut digits = [0_u8; 10];
        let mut count = 0;
        for character in trimmed.chars() {
            match character {
                '0'..='9' if count < 10 => {
                    digits[count] = character as u8 - b'0';
                    count += 1;
                }
                ' ' | '-' => {}
                _ => return Err(IdError::NhsNumberLength(text.to_owned())),
            }
        }
        if count != 10 {
            return Err(IdError::NhsNumberLength(text.to_owned()));
        }
        let number = NhsNumber(digits);
        if Self::check_digit(&digits) != Some(digits[9]) {
            return Err(IdError::NhsNumberCheckDigit(number.to_string()));
        }
        Ok(number)
    }

    /// The check digit the first nine digits call for; `None` when they make
    /// a number that cannot be valid (remainder 10).
    fn check_digit(digits: &[u8; 10]) -> Option<u8> {
        let sum: u32 = digits[..9]
            .iter()
            .zip((2..=10).rev())
            .map(|(digit, weight)| u32::from(*digit) * weight)
            .sum();
        match 11 - sum % 11 {
            11 => Some(0),
            10 => None,
            check => Some(check as u8),
        }
    }

    /// True for the reserved 999 test range.
    pub fn is_test_number(&self) -> bool {
        self.0[..3] == [9, 9, 9]
    }

    /// Makes a valid test-range number from a serial, for demos, tests and
    /// benchmarks: `999` then six digits of `serial`, then the check digit,
    /// skipping serials that give no valid number.
    pub fn test_number(serial: u32) -> NhsNumber {
        let mut serial = serial % 1_000_000;
        loop {
            let mut digits = [9, 9, 9, 0, 0, 0, 0, 0, 0, 0];
            let mut rest = serial;
            for position in (3..9).rev() {
                digits[position] = (rest % 10) as u8;
                rest /= 10;
            }
            if let Some(check) = Self::check_digit(&digits) {
                digits[9] = check;
                return NhsNumber(digits);
            }
            serial = (serial + 1) % 1_000_000;
        }
    }

    /// The ten digits with no spaces: the form stored and sent.
    pub fn as_digits(&self) -> String {
        self.0
            .iter()
            .map(|digit| char::from(b'0' + digit))
            .collect()
    }
}

impl fmt::Display for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_digits())
    }
}

impl fmt::Debug for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NhsNumber({self})")
    }
}

/// An Organisation Data Service code: identifies a local authority, trust,
/// GP practice, school or police force. Stored upper-case.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct OdsCode(String);

impl OdsCode {
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let code = text.trim().to_ascii_uppercase();
        let valid = (3..=12).contains(&code.len())
            && code
                .chars()
                .all(|character| character.is_ascii_alphanumeric());
        if valid {
            Ok(OdsCode(code))
        } else {
            Err(IdError::OdsCode(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OdsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A council's own identifier for a child it holds without an NHS number
/// (a newborn not yet registered, an asylum-seeking child, a record not yet
/// matched): unique within the council, so the pair is the identity.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct LocalChildId {
    council: OdsCode,
    value: Box<str>,
}

impl LocalChildId {
    pub fn parse(council: &str, value: &str) -> Result<Self, IdError> {
        let council = OdsCode::parse(council)?;
        let trimmed = value.trim();
        let valid = (1..=64).contains(&trimmed.len())
            && trimmed
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
        if !valid {
            return Err(IdError::LocalChildId(value.to_owned()));
        }
        Ok(LocalChildId {
            council,
            value: trimmed.into(),
        })
    }

    /// The council that issued it.
    pub fn council(&self) -> &OdsCode {
        &self.council
    }

    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for LocalChildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} local id {}", self.council, self.value)
    }
}

/// Who a child's record is held under: their NHS number, or, until one is
/// matched, their council's local identifier.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum ChildId {
    Nhs(NhsNumber),
    Local(LocalChildId),
}

impl ChildId {
    pub fn nhs_number(&self) -> Option<NhsNumber> {
        match self {
            ChildId::Nhs(number) => Some(*number),
            ChildId::Local(_) => None,
        }
    }

    pub fn local_id(&self) -> Option<&LocalChildId> {
        match self {
            ChildId::Nhs(_) => None,
            ChildId::Local(local) => Some(local),
        }
    }
}

impl From<NhsNumber> for ChildId {
    fn from(number: NhsNumber) -> Self {
        ChildId::Nhs(number)
    }
}

impl fmt::Display for ChildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildId::Nhs(number) => write!(f, "NHS number {number}"),
            ChildId::Local(local) => local.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_nhs(input: &str, expected: Result<&str, &str>) {
        let actual = NhsNumber::parse(input)
            .map(|number| number.to_string())
            .map_err(|error| error.to_string());
        match (actual, expected) {
            (Ok(number), Ok(digits)) => assert_eq!(number, digits, "{input:?}"),
            (Err(message), Err(fragment)) => {
                assert!(message.contains(fragment), "{input:?}: {message}")
            }
            (actual, expected) => panic!("{input:?}: got {actual:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn nhs_numbers() {
        // 9434765919 is the NHS's published example of a valid number.
        check_nhs("9434765919", Ok("9434765919"));
        check_nhs("943 476 5919", Ok("9434765919"));
        check_nhs(" 943-476-5919 ", Ok("9434765919"));
        check_nhs("9434765918", Err("check digit"));
        check_nhs("943476591", Err("10 digits"));
        check_nhs("94347659190", Err("10 digits"));
        check_nhs("94347659I9", Err("10 digits"));
        check_nhs("", Err("10 digits"));
        // Remainder 10 cannot be valid whatever the last digit.
        for last in 0..=9 {
            check_nhs(&format!("999000000{last}"), Err("check digit"));
        }
        check_nhs("9990000018", Ok("9990000018"));
    }

    #[test]
    fn test_numbers_are_valid_distinct_and_in_the_test_range() {
        let mut seen = std::collections::HashSet::new();
        for serial in 0..5_000 {
            let number = NhsNumber::test_number(serial);
            assert!(number.is_test_number());
            assert_eq!(NhsNumber::parse(&number.to_string()), Ok(number));
            seen.insert(number);
        }
        // A serial with no valid number moves on to the next serial's number.
        assert!(seen.len() > 4_500, "{}", seen.len());
        assert!(
            !NhsNumber::parse("9434765919")
                .expect("valid")
                .is_test_number()
        );
    }

    #[test]
    fn local_child_ids() {
        let id = LocalChildId::parse(" e09000999 ", " LCS-12/34 ").expect("valid");
        assert_eq!(
            (id.council().as_str(), id.value()),
            ("E09000999", "LCS-12/34")
        );
        assert_eq!(id.to_string(), "E09000999 local id LCS-12/34");
        for bad in ["", "  ", "has space", "semi;colon", &"x".repeat(65)] {
            assert_eq!(
                LocalChildId::parse("E09000999", bad),
                Err(IdError::LocalChildId(bad.to_owned())),
                "{bad:?}"
            );
        }
        assert!(matches!(
            LocalChildId::parse("E0", "1"),
            Err(IdError::OdsCode(_))
        ));
    }

    #[test]
    fn ods_codes() {
        assert_eq!(
            OdsCode::parse(" e09000014 ").map(|code| code.to_string()),
            Ok("E09000014".into())
        );
        assert!(OdsCode::parse("RJ1").is_ok());
        assert!(OdsCode::parse("R1").is_err());
        assert!(OdsCode::parse("R J1").is_err());
        assert!(OdsCode::parse("ABCDEFGHIJKLM").is_err());
    }
}
