//! What day it is, for every rule that depends on it (a date in the
//! future, a deadline missed, a plan still shown): the wall clock's, or,
//! where a test or a replay must not depend on when it runs, a fixed day.
//! Services ask their `Clock`, never the wall clock.

use domain::date::Date;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Clock {
    /// The wall clock's date, in UK civil time (`validate::date_of`).
    #[default]
    System,
    /// Always this day.
    Fixed(Date),
}

impl Clock {
    pub fn today(&self) -> Date {
        match self {
            Clock::System => crate::validate::today(),
            Clock::Fixed(day) => *day,
        }
    }
}
