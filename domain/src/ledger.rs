//! The double-entry ledger: every movement of money is one transaction whose
//! postings sum to zero.
//!
//! Amounts are signed minor units: a debit is positive, a credit negative.
//! Money the platform holds for others (the order escrow, what it owes
//! sellers) sits in liability accounts, whose balances are negative; the
//! figures shown to people are those balances negated.
//!
//! The accounts:
//! - `provider`: money at the payment provider (an asset). A buyer's payment
//!   debits it, a refund credits it.
//! - `escrow`: what buyers paid for orders not yet settled.
//! - `platform_revenue`: the buyer service fees and seller commissions.
//! - `seller_pending:<user>`: a seller's earnings from completed orders, not
//!   yet cleared.
//! - `seller_available:<user>`: cleared earnings the seller may withdraw.
//! - `seller_withdrawn:<user>`: what the seller asked to be paid out.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{OrderId, UserId, WithdrawalId};
use crate::money::{Currency, Money};

/// Basis points (1/100 of a percent) of the order price a buyer pays as the
/// service fee: 5.5%.
pub const BUYER_FEE_BPS: i64 = 550;
/// The least service fee, in minor units: $1.00.
pub const BUYER_FEE_MIN_MINOR: i64 = 100;
/// Basis points of the order price the platform keeps from the seller: 20%.
pub const SELLER_COMMISSION_BPS: i64 = 2_000;

/// `amount * bps / 10_000`, rounded half up (amounts are never negative).
fn share(amount: i64, bps: i64) -> i64 {
    (amount * bps + 5_000) / 10_000
}

/// What a buyer pays for an order: the price, the service fee and their sum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amounts {
    pub price: Money,
    pub buyer_fee: Money,
    pub total: Money,
}

impl Amounts {
    /// The amounts for an order at `price`: the service fee is 5.5% of the
    /// price rounded half up to the cent, and at least $1.00.
    pub fn for_price(price: Money) -> Self {
        let fee = share(price.amount_minor, BUYER_FEE_BPS).max(BUYER_FEE_MIN_MINOR);
        Self {
            price,
            buyer_fee: Money {
                amount_minor: fee,
                currency: price.currency,
            },
            total: Money {
                amount_minor: price.amount_minor + fee,
                currency: price.currency,
            },
        }
    }

    /// How the total divides once `refunded` of it went back to the buyer.
    /// A refund comes out of the price first, then out of the fee; the
    /// commission is taken on what is left of the price.
    pub fn split(&self, refunded: i64) -> Split {
        let refunded = refunded.clamp(0, self.total.amount_minor);
        let price_refund = refunded.min(self.price.amount_minor);
        let fee_refund = refunded - price_refund;
        let seller_gross = self.price.amount_minor - price_refund;
        let commission = share(seller_gross, SELLER_COMMISSION_BPS);
        Split {
            refunded,
            seller_net: seller_gross - commission,
            platform: self.buyer_fee.amount_minor - fee_refund + commission,
        }
    }
}

/// The three shares of an order's total, which always add up to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    pub refunded: i64,
    pub seller_net: i64,
    pub platform: i64,
}

/// A ledger account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Account {
    Provider,
    Escrow,
    PlatformRevenue,
    SellerPending(UserId),
    SellerAvailable(UserId),
    SellerWithdrawn(UserId),
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Account::Provider => f.write_str("provider"),
            Account::Escrow => f.write_str("escrow"),
            Account::PlatformRevenue => f.write_str("platform_revenue"),
            Account::SellerPending(user) => write!(f, "seller_pending:{user}"),
            Account::SellerAvailable(user) => write!(f, "seller_available:{user}"),
            Account::SellerWithdrawn(user) => write!(f, "seller_withdrawn:{user}"),
        }
    }
}

impl FromStr for Account {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let user = |id: &str| {
            id.parse::<UserId>()
                .map_err(|_| format!("bad user id in account {s:?}"))
        };
        match s.split_once(':') {
            None => match s {
                "provider" => Ok(Account::Provider),
                "escrow" => Ok(Account::Escrow),
                "platform_revenue" => Ok(Account::PlatformRevenue),
                _ => Err(format!("unknown account {s:?}")),
            },
            Some(("seller_pending", id)) => Ok(Account::SellerPending(user(id)?)),
            Some(("seller_available", id)) => Ok(Account::SellerAvailable(user(id)?)),
            Some(("seller_withdrawn", id)) => Ok(Account::SellerWithdrawn(user(id)?)),
            Some(_) => Err(format!("unknown account {s:?}")),
        }
    }
}

/// What a transaction records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransactionKind {
    /// A buyer paid an order's total into escrow.
    Payment,
    /// An order settled: escrow to the platform's revenue and the seller's
    /// pending earnings.
    Settlement,
    /// Money went back from escrow to the buyer.
    Refund,
    /// A seller's pending earnings became available.
    Clearance,
    /// A seller asked for available earnings to be paid out.
    Withdrawal,
}

impl TransactionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionKind::Payment => "payment",
            TransactionKind::Settlement => "settlement",
            TransactionKind::Refund => "refund",
            TransactionKind::Clearance => "clearance",
            TransactionKind::Withdrawal => "withdrawal",
        }
    }
}

impl FromStr for TransactionKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "payment" => TransactionKind::Payment,
            "settlement" => TransactionKind::Settlement,
            "refund" => TransactionKind::Refund,
            "clearance" => TransactionKind::Clearance,
            "withdrawal" => TransactionKind::Withdrawal,
            other => return Err(format!("unknown transaction kind {other:?}")),
        })
    }
}

/// One line of a transaction: debit (positive) or credit (negative).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Posting {
    pub account: Account,
    pub amount_minor: i64,
}

/// A balanced set of postings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    pub kind: TransactionKind,
    pub order_id: Option<OrderId>,
    pub withdrawal_id: Option<WithdrawalId>,
    pub currency: Currency,
    pub postings: Vec<Posting>,
    pub at: DateTime<Utc>,
}

impl Transaction {
    fn new(
        kind: TransactionKind,
        order_id: Option<OrderId>,
        at: DateTime<Utc>,
        postings: &[(Account, i64)],
    ) -> Self {
        Self {
            kind,
            order_id,
            withdrawal_id: None,
            currency: Currency::MARKETPLACE,
            postings: postings
                .iter()
                .filter(|(_, amount)| *amount != 0)
                .map(|&(account, amount_minor)| Posting {
                    account,
                    amount_minor,
                })
                .collect(),
            at,
        }
    }

    /// Whether the postings sum to zero: every transaction the marketplace
    /// builds is.
    pub fn is_balanced(&self) -> bool {
        self.postings.iter().map(|p| p.amount_minor).sum::<i64>() == 0
    }

    /// The buyer's payment of `total` for an order, into escrow.
    pub fn payment(order: OrderId, total: i64, at: DateTime<Utc>) -> Self {
        Self::new(
            TransactionKind::Payment,
            Some(order),
            at,
            &[(Account::Provider, total), (Account::Escrow, -total)],
        )
    }

    /// `amount` back to the buyer, out of escrow.
    pub fn refund(order: OrderId, amount: i64, at: DateTime<Utc>) -> Self {
        Self::new(
            TransactionKind::Refund,
            Some(order),
            at,
            &[(Account::Escrow, amount), (Account::Provider, -amount)],
        )
    }

    /// What is left in escrow after refunds, to the platform and the
    /// seller's pending earnings.
    pub fn settlement(order: OrderId, seller: UserId, split: Split, at: DateTime<Utc>) -> Self {
        Self::new(
            TransactionKind::Settlement,
            Some(order),
            at,
            &[
                (Account::Escrow, split.seller_net + split.platform),
                (Account::PlatformRevenue, -split.platform),
                (Account::SellerPending(seller), -split.seller_net),
            ],
        )
    }

    /// The seller's earnings from an order become available.
    pub fn clearance(order: OrderId, seller: UserId, amount: i64, at: DateTime<Utc>) -> Self {
        Self::new(
            TransactionKind::Clearance,
            Some(order),
            at,
            &[
                (Account::SellerPending(seller), amount),
                (Account::SellerAvailable(seller), -amount),
            ],
        )
    }

    /// A seller's withdrawal of `amount` of their available earnings.
    pub fn withdrawal(id: WithdrawalId, seller: UserId, amount: i64, at: DateTime<Utc>) -> Self {
        let mut transaction = Self::new(
            TransactionKind::Withdrawal,
            None,
            at,
            &[
                (Account::SellerAvailable(seller), amount),
                (Account::SellerWithdrawn(seller), -amount),
            ],
        );
        transaction.withdrawal_id = Some(id);
        transaction
    }
}

/// A seller's earnings as they see them (positive amounts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// From completed orders, not yet cleared.
    pub pending_minor: i64,
    /// Cleared, may be withdrawn.
    pub available_minor: i64,
    /// Asked to be paid out.
    pub withdrawn_minor: i64,
}

/// A seller's request to be paid out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawal {
    pub id: WithdrawalId,
    pub seller_id: UserId,
    pub amount: Money,
    pub requested_at: DateTime<Utc>,
}

/// Why a withdrawal cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WithdrawalError {
    #[error("a withdrawal is at least {min} minor units", min = MIN_WITHDRAWAL_MINOR)]
    TooSmall,
    #[error("only {available} minor units are available")]
    MoreThanAvailable { available: i64 },
}

/// The least a seller may withdraw at once: $5.00.
pub const MIN_WITHDRAWAL_MINOR: i64 = 500;

/// Checks a withdrawal of `amount` against the seller's balance.
pub fn check_withdrawal(balance: &Balance, amount: i64) -> Result<(), WithdrawalError> {
    if amount < MIN_WITHDRAWAL_MINOR {
        return Err(WithdrawalError::TooSmall);
    }
    if amount > balance.available_minor {
        return Err(WithdrawalError::MoreThanAvailable {
            available: balance.available_minor,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(amount_minor: i64) -> Money {
        Money {
            amount_minor,
            currency: Currency::Usd,
        }
    }

    #[test]
    fn fee_is_five_and_a_half_percent_with_a_floor() {
        let amounts = Amounts::for_price(usd(10_000));
        assert_eq!(amounts.buyer_fee.amount_minor, 550);
        assert_eq!(amounts.total.amount_minor, 10_550);
        // 5.5% of $5.00 is 27.5 cents: the $1.00 floor applies.
        assert_eq!(Amounts::for_price(usd(500)).buyer_fee.amount_minor, 100);
        // Half a cent rounds up: 5.5% of $123.45 is 678.975 cents.
        assert_eq!(Amounts::for_price(usd(12_345)).buyer_fee.amount_minor, 679);
    }

    #[test]
    fn splits_always_add_up_to_the_total() {
        for price in [500, 999, 1_001, 12_345, 5_000_000] {
            let amounts = Amounts::for_price(usd(price));
            for refunded in [0, 1, price / 2, price, amounts.total.amount_minor] {
                let split = amounts.split(refunded);
                assert_eq!(
                    split.refunded + split.seller_net + split.platform,
                    amounts.total.amount_minor
                );
                assert!(split.seller_net >= 0 && split.platform >= 0);
            }
        }
        let full = Amounts::for_price(usd(10_000)).split(0);
        assert_eq!((full.seller_net, full.platform), (8_000, 2_550));
    }

    #[test]
    fn every_transaction_balances() {
        let (order, seller, at) = (OrderId::new(), UserId::new(), Utc::now());
        let split = Amounts::for_price(usd(12_345)).split(1_000);
        for transaction in [
            Transaction::payment(order, 13_024, at),
            Transaction::refund(order, 1_000, at),
            Transaction::settlement(order, seller, split, at),
            Transaction::clearance(order, seller, split.seller_net, at),
            Transaction::withdrawal(WithdrawalId::new(), seller, 700, at),
        ] {
            assert!(transaction.is_balanced(), "{transaction:?}");
        }
    }

    #[test]
    fn accounts_round_trip_through_text() {
        let user = UserId::new();
        for account in [
            Account::Provider,
            Account::Escrow,
            Account::PlatformRevenue,
            Account::SellerPending(user),
            Account::SellerAvailable(user),
            Account::SellerWithdrawn(user),
        ] {
            assert_eq!(account.to_string().parse::<Account>(), Ok(account));
        }
        assert!("seller_pending:nope".parse::<Account>().is_err());
        assert!("bank".parse::<Account>().is_err());
    }

    #[test]
    fn withdrawals_need_the_money() {
        let balance = Balance {
            available_minor: 1_000,
            ..Balance::default()
        };
        assert_eq!(check_withdrawal(&balance, 1_000), Ok(()));
        assert_eq!(
            check_withdrawal(&balance, 1_001),
            Err(WithdrawalError::MoreThanAvailable { available: 1_000 })
        );
        assert_eq!(
            check_withdrawal(&balance, 499),
            Err(WithdrawalError::TooSmall)
        );
    }
}
