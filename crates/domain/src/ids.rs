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
