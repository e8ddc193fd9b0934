//! The four GP clinical systems, one adapter each: which coded entry a
//! notification asks the practice to file, in the terms that system's users
//! see (SNOMED CT, with the legacy Read v2 or CTV3 code its history shows),
//! and how that system turns the entry into a warning or a register entry.
//!
//! Nothing here writes into a clinical system: no public interface allows
//! it (IM1 needs supplier pairing and its formats are not public). The
//! entry travels in the document for the practice to file.

use serde::{Deserialize, Serialize};

/// A GP practice's clinical system: which one each practice runs is the
/// bridge's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClinicalSystem {
    EmisWeb,
    SystmOne,
    Vision,
    Evolution,
}

/// What a notification means for a GP record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    SubjectToPlan,
    NoLongerSubjectToPlan,
    LookedAfter,
    NoLongerLookedAfter,
    UnbornChildCauseForConcern,
}

/// A concept as GP records code it: SNOMED CT (what every system stores
/// now) and the legacy codes still visible in older history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concept {
    pub snomed: &'static str,
    pub term: &'static str,
    pub read_v2: &'static str,
    pub ctv3: Option<&'static str>,
}

impl Finding {
    /// The concept, from NHS England's England-ChildProtectionPlan value
    /// set and the GP coding guidance (`shared/domain.md`).
    pub fn concept(self) -> Concept {
        let (snomed, term, read_v2, ctv3) = match self {
            Finding::SubjectToPlan => (
                "342191000000101",
                "Subject of child protection plan",
                "13Iv.",
                Some("XaOnx"),
            ),
            Finding::NoLongerSubjectToPlan => (
                "342891000000105",
                "No longer subject of child protection plan",
                "13Iw.",
                Some("XaOtl"),
            ),
            Finding::LookedAfter => ("764841000000100", "Looked after child", "13IB1", None),
            Finding::NoLongerLookedAfter => {
                ("764951000000107", "No longer looked after", "9NgF.", None)
            }
            Finding::UnbornChildCauseForConcern => (
                "878111000000109",
                "Unborn child is cause for safeguarding concern",
                "13If0",
                Some("XaaNV"),
            ),
        };
        Concept {
            snomed,
            term,
            read_v2,
            ctv3,
        }
    }

    /// The finding that clears this one, if any: what a system waits for
    /// before it lifts a warning.
    fn removal(self) -> Option<Finding> {
        match self {
            Finding::SubjectToPlan => Some(Finding::NoLongerSubjectToPlan),
            Finding::LookedAfter => Some(Finding::NoLongerLookedAfter),
            _ => None,
        }
    }

    fn removes(self) -> bool {
        matches!(
            self,
            Finding::NoLongerSubjectToPlan | Finding::NoLongerLookedAfter
        )
    }
}

/// The entry a practice is asked to file, as its system shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodedEntry {
    pub finding: Finding,
    pub concept: Concept,
    pub system: ClinicalSystem,
    /// The legacy scheme and code this system's users see beside the
    /// SNOMED term: (`"Read v2"`, `"13Iv."`) or (`"CTV3"`, `"XaOnx"`).
    pub legacy: (&'static str, &'static str),
    /// What filing it does in this system.
    pub effect: String,
}

impl ClinicalSystem {
    pub fn name(self) -> &'static str {
        match self {
            ClinicalSystem::EmisWeb => "EMIS Web",
            ClinicalSystem::SystmOne => "TPP SystmOne",
            ClinicalSystem::Vision => "Vision",
            ClinicalSystem::Evolution => "Microtest Evolution",
        }
    }

    /// The entry for `finding`, in this system's terms.
    pub fn entry(self, finding: Finding) -> CodedEntry {
        let concept = finding.concept();
        // SystmOne grew up on CTV3; EMIS Web, Vision and Evolution on
        // Read v2. A concept with no CTV3 code shows its Read v2 code.
        let legacy = match (self, concept.ctv3) {
            (ClinicalSystem::SystmOne, Some(ctv3)) => ("CTV3", ctv3),
            _ => ("Read v2", concept.read_v2),
        };
        CodedEntry {
            finding,
            concept,
            system: self,
            legacy,
            effect: self.effect(finding),
        }
    }

    /// How filing `finding` shows in this system.
    fn effect(self, finding: Finding) -> String {
        let removal = finding
            .removal()
            .map(|removal| removal.concept())
            .map(|c| format!("{} ({})", c.term, c.snomed));
        match (self, finding.removes()) {
            (ClinicalSystem::EmisWeb, false) => format!(
                "EMIS Web raises a child protection patient warning when this code is filed{}.",
                removal.map_or_else(String::new, |removal| format!(
                    ", and clears it only when the matching removal code is filed: {removal}"
                ))
            ),
            (ClinicalSystem::EmisWeb, true) => "EMIS Web clears the child protection patient warning raised by the matching code when this removal code is filed.".into(),
            (ClinicalSystem::SystmOne, false) => "SystmOne derives its child protection register from the latest of these codes without a later removal: filing it puts the patient on the register.".into(),
            (ClinicalSystem::SystmOne, true) => "SystmOne derives its child protection register from the latest code without a later removal: filing this removal code takes the patient off the register.".into(),
            (ClinicalSystem::Vision | ClinicalSystem::Evolution, removes) => format!(
                "{} files the SNOMED CT concept with its Read v2 term; whether it shows as an alert is the practice's own alert setting for this code, so {} the alert as the practice's safeguarding protocol says.",
                self.name(),
                if removes { "end" } else { "set" }
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_system_names_the_code_its_users_see() {
        let emis = ClinicalSystem::EmisWeb.entry(Finding::SubjectToPlan);
        assert_eq!(emis.concept.snomed, "342191000000101");
        assert_eq!(emis.legacy, ("Read v2", "13Iv."));
        assert!(emis.effect.contains("patient warning"));
        assert!(emis.effect.contains("342891000000105"), "{}", emis.effect);

        let tpp = ClinicalSystem::SystmOne.entry(Finding::SubjectToPlan);
        assert_eq!(tpp.legacy, ("CTV3", "XaOnx"));
        assert!(tpp.effect.contains("register"));
        // No CTV3 code: SystmOne shows the Read v2 one.
        let looked_after = ClinicalSystem::SystmOne.entry(Finding::LookedAfter);
        assert_eq!(looked_after.legacy, ("Read v2", "13IB1"));

        for system in [ClinicalSystem::Vision, ClinicalSystem::Evolution] {
            let entry = system.entry(Finding::NoLongerSubjectToPlan);
            assert_eq!(entry.legacy, ("Read v2", "13Iw."));
            assert!(entry.effect.starts_with(system.name()));
        }
        let unborn = ClinicalSystem::SystmOne.entry(Finding::UnbornChildCauseForConcern);
        assert_eq!(
            (unborn.concept.snomed, unborn.legacy),
            ("878111000000109", ("CTV3", "XaaNV"))
        );
    }

    #[test]
    fn configuration_names_systems_in_kebab_case() {
        let systems: Vec<ClinicalSystem> =
            serde_json::from_str(r#"["emis-web","systm-one","vision","evolution"]"#)
                .expect("every system");
        assert_eq!(systems.len(), 4);
        assert!(serde_json::from_str::<ClinicalSystem>(r#""emis""#).is_err());
    }
}
