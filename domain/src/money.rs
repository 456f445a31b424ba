//! Money: integer minor units and a currency, never floats.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The currencies prices can be set in. The marketplace runs in one
/// currency ([`Currency::MARKETPLACE`]) so that prices compare and filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Currency {
    #[serde(rename = "USD")]
    Usd,
}

impl Currency {
    pub const MARKETPLACE: Currency = Currency::Usd;

    pub fn code(self) -> &'static str {
        match self {
            Currency::Usd => "USD",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        match code.trim().to_ascii_uppercase().as_str() {
            "USD" => Some(Currency::Usd),
            _ => None,
        }
    }
}

/// An amount in minor units (cents) of a currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: Currency,
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let abs = self.amount_minor.unsigned_abs();
        write!(
            f,
            "{sign}{}.{:02} {}",
            abs / 100,
            abs % 100,
            self.currency.code()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_minor_units() {
        let m = Money {
            amount_minor: 12_345,
            currency: Currency::Usd,
        };
        assert_eq!(m.to_string(), "123.45 USD");
        assert_eq!(
            Money {
                amount_minor: -5,
                currency: Currency::Usd
            }
            .to_string(),
            "-0.05 USD"
        );
        assert_eq!(Currency::parse("usd"), Some(Currency::Usd));
        assert_eq!(Currency::parse("XXX"), None);
    }
}
