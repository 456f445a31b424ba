//! The wall clock.

use chrono::{DateTime, Utc};
use domain::ports::Clock;

/// Reads the system time.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
