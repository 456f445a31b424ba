//! The order rules ([`domain::order::decide`]) from the outside: one example
//! test per rule (who may make each change, every step of the lifecycle,
//! the clock, cancellations, disputes, validation), then property tests that
//! drive random sequences of commands, sensible and not, through `decide`
//! and check after every step that the order is in a legal state and that
//! the money it moved balances.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use domain::ids::UserId;
use domain::ledger::{Account, Amounts, Transaction, TransactionKind};
use domain::money::{Currency, Money};
use domain::order::{
    decide, place, Actor, Decision, Order, OrderChange, OrderCommand, OrderError, OrderPolicy,
    OrderStatus, OrderTerms, Resolution, Side, MAX_DELIVERY_FILES, MAX_TEXT_CHARS,
};
use proptest::prelude::*;
use proptest::test_runner::Config;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const ACTORS: [Actor; 4] = [Actor::Buyer, Actor::Seller, Actor::Admin, Actor::System];

fn usd(amount_minor: i64) -> Money {
    Money {
        amount_minor,
        currency: Currency::Usd,
    }
}

fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 30, 0).unwrap()
}

fn terms(delivery_days: u32, revisions: u32) -> OrderTerms {
    OrderTerms {
        title: "A logo with three concepts".into(),
        description: "Three concepts in vector formats.".into(),
        gig_id: None,
        package: None,
        offer_id: None,
        delivery_days,
        revisions,
    }
}

fn pay(amount: Money) -> OrderCommand {
    OrderCommand::PaymentSucceeded { amount }
}

fn requirements(text: &str) -> OrderCommand {
    OrderCommand::SubmitRequirements { text: text.into() }
}

fn deliver(message: &str) -> OrderCommand {
    OrderCommand::Deliver {
        message: message.into(),
        files: vec!["media/final.png".into()],
    }
}

fn revision(reason: &str) -> OrderCommand {
    OrderCommand::RequestRevision {
        reason: reason.into(),
    }
}

fn extension(days: u32) -> OrderCommand {
    OrderCommand::RequestExtension {
        days,
        reason: "the client sent more material".into(),
    }
}

fn cancel(reason: &str) -> OrderCommand {
    OrderCommand::Cancel {
        reason: reason.into(),
    }
}

fn dispute(reason: &str) -> OrderCommand {
    OrderCommand::OpenDispute {
        reason: reason.into(),
    }
}

/// Sums every posting per account.
fn balances(ledger: &[Transaction]) -> BTreeMap<Account, i64> {
    let mut sums = BTreeMap::new();
    for posting in ledger.iter().flat_map(|t| &t.postings) {
        *sums.entry(posting.account).or_insert(0) += posting.amount_minor;
    }
    sums
}

/// How much a transaction moves out of (positive) or into (negative) escrow.
fn escrow_debit(transaction: &Transaction) -> i64 {
    transaction
        .postings
        .iter()
        .filter(|p| p.account == Account::Escrow)
        .map(|p| p.amount_minor)
        .sum()
}

fn count(ledger: &[Transaction], kind: TransactionKind) -> usize {
    ledger.iter().filter(|t| t.kind == kind).count()
}

/// One order as a store would keep it: the current order, the clock and
/// every ledger transaction stored so far.
struct Run {
    order: Order,
    now: DateTime<Utc>,
    ledger: Vec<Transaction>,
    policy: OrderPolicy,
}

impl Run {
    fn new(price_minor: i64, delivery_days: u32, revisions: u32) -> Self {
        let now = start_time();
        let order = place(
            UserId::new(),
            UserId::new(),
            None,
            terms(delivery_days, revisions),
            usd(price_minor),
            now,
        );
        Self {
            order,
            now,
            ledger: Vec::new(),
            policy: OrderPolicy::default(),
        }
    }

    /// A $100.00 order, five days, two revisions.
    fn standard() -> Self {
        Self::new(10_000, 5, 2)
    }

    fn total(&self) -> i64 {
        self.order.amounts.total.amount_minor
    }

    fn wait(&mut self, delta: TimeDelta) -> &mut Self {
        self.now += delta;
        self
    }

    fn try_(&self, by: Actor, command: OrderCommand) -> Result<Option<Decision>, OrderError> {
        decide(&self.order, by, command, self.now, &self.policy)
    }

    /// Applies a change that must happen, and stores it.
    #[track_caller]
    fn apply(&mut self, by: Actor, command: OrderCommand) -> Decision {
        let name = command.name();
        let decision = match self.try_(by, command) {
            Ok(Some(decision)) => decision,
            other => panic!(
                "{by:?} {name} on a {:?} order: {other:?}",
                self.order.status
            ),
        };
        self.store(&decision);
        decision
    }

    fn store(&mut self, decision: &Decision) {
        self.order = decision.order.clone();
        self.order.version += 1;
        self.ledger.extend(decision.transactions.iter().cloned());
    }

    fn balance(&self, account: Account) -> i64 {
        balances(&self.ledger).get(&account).copied().unwrap_or(0)
    }

    fn seller_pending(&self) -> i64 {
        self.balance(Account::SellerPending(self.order.seller_id))
    }

    fn seller_available(&self) -> i64 {
        self.balance(Account::SellerAvailable(self.order.seller_id))
    }

    fn paid(&mut self) -> &mut Self {
        let total = self.order.amounts.total;
        self.apply(Actor::System, pay(total));
        self
    }

    fn started(&mut self) -> &mut Self {
        self.paid();
        self.apply(Actor::Buyer, requirements("Blue and white, for a bakery."));
        self
    }

    fn delivered(&mut self) -> &mut Self {
        self.started();
        self.wait(TimeDelta::days(2));
        self.apply(Actor::Seller, deliver("Here are the three concepts."));
        self
    }
}

#[track_caller]
fn assert_not_allowed(result: Result<Option<Decision>, OrderError>) {
    assert!(
        matches!(result, Err(OrderError::NotAllowed { .. })),
        "expected NotAllowed, got {result:?}"
    );
}

#[track_caller]
fn assert_wrong_state(result: Result<Option<Decision>, OrderError>) {
    assert!(
        matches!(result, Err(OrderError::WrongState { .. })),
        "expected WrongState, got {result:?}"
    );
}

#[track_caller]
fn assert_refused(result: Result<Option<Decision>, OrderError>) {
    assert!(
        matches!(result, Err(OrderError::Refused(_))),
        "expected Refused, got {result:?}"
    );
}

#[track_caller]
fn assert_invalid(result: Result<Option<Decision>, OrderError>, expected: &str) {
    match result {
        Err(OrderError::Invalid { field, .. }) if field == expected => {}
        other => panic!("expected Invalid {expected}, got {other:?}"),
    }
}

/// The single refund transaction of a decision, and its amount.
#[track_caller]
fn refund_of(decision: &Decision) -> i64 {
    let refunds: Vec<_> = decision
        .transactions
        .iter()
        .filter(|t| t.kind == TransactionKind::Refund)
        .collect();
    assert_eq!(refunds.len(), 1, "{:?}", decision.transactions);
    escrow_debit(refunds[0])
}

// ---------------------------------------------------------------------------
// Who may make each change
// ---------------------------------------------------------------------------

/// What one actor should get.
#[derive(Clone, Copy, Debug)]
enum Expect {
    Done,
    NotAllowed,
    Refused,
}

#[test]
fn each_command_is_made_by_its_party_only() {
    use Expect::{Done, NotAllowed as No, Refused};

    let awaiting_payment = Run::standard();
    let mut awaiting_requirements = Run::standard();
    awaiting_requirements.paid();
    let mut in_progress = Run::standard();
    in_progress.started();
    let mut delivered = Run::standard();
    delivered.delivered();
    let mut extension_asked = Run::standard();
    extension_asked.started();
    extension_asked.apply(Actor::Seller, extension(3));
    let mut cancellation_asked = Run::standard();
    cancellation_asked.started();
    cancellation_asked.apply(Actor::Buyer, cancel("we changed our plans"));
    let mut disputed = Run::standard();
    disputed.started();
    disputed.apply(Actor::Buyer, dispute("no answer for a week"));
    let mut expired = Run::standard();
    expired.wait(TimeDelta::days(2));
    let total = awaiting_payment.order.amounts.total;

    // Expectations for Buyer, Seller, Admin, System, in that order.
    let cases: Vec<(&Run, OrderCommand, [Expect; 4])> = vec![
        (&awaiting_payment, pay(total), [No, No, No, Done]),
        (
            &awaiting_payment,
            OrderCommand::PaymentFailed {
                reason: "card declined".into(),
            },
            [No, No, No, Done],
        ),
        (
            &awaiting_requirements,
            requirements("Blue and white."),
            [Done, No, No, No],
        ),
        (&in_progress, deliver("Done."), [No, Done, No, No]),
        (&delivered, OrderCommand::Accept, [Done, No, No, No]),
        (&delivered, revision("Bigger type."), [Done, No, No, No]),
        (&in_progress, extension(3), [No, Done, No, No]),
        (
            &extension_asked,
            OrderCommand::AnswerExtension { approve: true },
            [Done, No, No, No],
        ),
        (
            &in_progress,
            cancel("plans changed"),
            [Done, Done, Done, No],
        ),
        (
            &cancellation_asked,
            OrderCommand::AnswerCancellation { accept: true },
            // The buyer asked: only the seller answers.
            [Refused, Done, No, No],
        ),
        (&in_progress, dispute("no answer"), [Done, Done, No, No]),
        (
            &disputed,
            OrderCommand::Resolve(Resolution::Complete),
            [No, No, Done, No],
        ),
        (&expired, OrderCommand::Tick, [No, No, No, Done]),
    ];
    for (run, command, expected) in cases {
        for (by, expect) in ACTORS.into_iter().zip(expected) {
            let result = run.try_(by, command.clone());
            let ok = match expect {
                Done => matches!(result, Ok(Some(_))),
                No => matches!(result, Err(OrderError::NotAllowed { .. })),
                Refused => matches!(result, Err(OrderError::Refused(_))),
            };
            assert!(
                ok,
                "{by:?} {}: expected {expect:?}, got {result:?}",
                command.name()
            );
        }
    }
}

/// Found by the properties: the clock's `Cancel` with an over-long reason
/// was answered `Invalid` instead of `NotAllowed`; who may act is checked
/// before what they sent.
#[test]
fn the_clock_may_not_cancel_whatever_the_reason() {
    let mut run = Run::standard();
    let too_long = "z".repeat(MAX_TEXT_CHARS + 1);
    assert_not_allowed(run.try_(Actor::System, cancel(&too_long)));
    run.started();
    assert_not_allowed(run.try_(Actor::System, cancel(&too_long)));
    assert_not_allowed(run.try_(Actor::System, cancel("")));
    // The parties still get the validation error.
    assert_invalid(run.try_(Actor::Buyer, cancel(&too_long)), "reason");
}

// ---------------------------------------------------------------------------
// The lifecycle
// ---------------------------------------------------------------------------

#[test]
fn an_order_runs_from_payment_to_cleared_earnings() {
    let mut run = Run::new(10_000, 5, 1);
    let total = run.total();
    assert_eq!(total, 10_550);
    assert_eq!(run.order.status, OrderStatus::AwaitingPayment);

    let paid = run.apply(Actor::System, pay(run.order.amounts.total));
    assert_eq!(paid.change, OrderChange::Paid);
    assert_eq!(paid.order.status, OrderStatus::AwaitingRequirements);
    assert_eq!(paid.order.paid_at, Some(run.now));
    assert_eq!(paid.transactions.len(), 1);
    assert_eq!(paid.transactions[0].kind, TransactionKind::Payment);
    assert_eq!(run.balance(Account::Escrow), -total);
    assert_eq!(run.balance(Account::Provider), total);
    // No clock runs while the seller waits for the requirements.
    assert_eq!(run.order.next_deadline(&run.policy), None);

    run.wait(TimeDelta::hours(3));
    let started = run.apply(Actor::Buyer, requirements("  Blue and white.  "));
    assert_eq!(started.change, OrderChange::RequirementsSubmitted);
    assert_eq!(run.order.status, OrderStatus::InProgress);
    assert_eq!(run.order.requirements.as_deref(), Some("Blue and white."));
    assert_eq!(run.order.started_at, Some(run.now));
    let due = run.now + TimeDelta::days(5);
    assert_eq!(run.order.due_at, Some(due));
    assert_eq!(run.order.next_deadline(&run.policy), Some(due));
    assert!(started.transactions.is_empty());

    run.wait(TimeDelta::days(2));
    let first = run.apply(Actor::Seller, deliver("Three concepts."));
    assert_eq!(first.change, OrderChange::Delivered);
    assert_eq!(run.order.status, OrderStatus::Delivered);
    assert_eq!(run.order.deliveries.len(), 1);
    assert_eq!(run.order.deliveries[0].delivered_at, run.now);
    assert!(!run.order.late);
    assert_eq!(
        run.order.next_deadline(&run.policy),
        Some(run.now + TimeDelta::days(3))
    );

    let asked = run.apply(Actor::Buyer, revision("Bigger type, please."));
    assert_eq!(asked.change, OrderChange::RevisionRequested);
    assert_eq!(run.order.status, OrderStatus::RevisionRequested);
    assert_eq!(run.order.revisions_used, 1);
    // The delivery date keeps running during a revision.
    assert_eq!(run.order.next_deadline(&run.policy), Some(due));

    run.wait(TimeDelta::days(1));
    run.apply(Actor::Seller, deliver("Bigger type."));
    assert_eq!(run.order.status, OrderStatus::Delivered);
    assert_eq!(run.order.deliveries.len(), 2);
    // The one revision is used up.
    assert_refused(run.try_(Actor::Buyer, revision("And smaller again.")));

    let accepted = run.apply(Actor::Buyer, OrderCommand::Accept);
    assert_eq!(accepted.change, OrderChange::Completed);
    assert_eq!(run.order.status, OrderStatus::Completed);
    assert_eq!(run.order.completed_at, Some(run.now));
    assert_eq!(accepted.refund_minor, None);
    assert_eq!(accepted.transactions.len(), 1);
    assert_eq!(accepted.transactions[0].kind, TransactionKind::Settlement);
    assert!(accepted.transactions[0].is_balanced());
    assert_eq!(run.balance(Account::Escrow), 0);
    // $5.50 service fee plus 20% of the $100.00 price to the platform.
    assert_eq!(run.balance(Account::PlatformRevenue), -2_550);
    assert_eq!(run.seller_pending(), -8_000);
    assert_eq!(run.order.amounts, Amounts::for_price(usd(10_000)));

    // Earnings clear after the clearance period, and only then.
    let clears_at = run.now + run.policy.clearance_after;
    assert_eq!(run.order.next_deadline(&run.policy), Some(clears_at));
    run.wait(run.policy.clearance_after - TimeDelta::seconds(1));
    assert_eq!(run.try_(Actor::System, OrderCommand::Tick), Ok(None));
    run.wait(TimeDelta::seconds(1));
    let cleared = run.apply(Actor::System, OrderCommand::Tick);
    assert_eq!(cleared.change, OrderChange::Cleared);
    assert_eq!(run.order.status, OrderStatus::Completed);
    assert_eq!(run.order.cleared_at, Some(run.now));
    assert_eq!(cleared.transactions.len(), 1);
    assert_eq!(cleared.transactions[0].kind, TransactionKind::Clearance);
    assert_eq!(run.seller_pending(), 0);
    assert_eq!(run.seller_available(), -8_000);
    assert_eq!(run.order.next_deadline(&run.policy), None);
    run.wait(TimeDelta::days(100));
    assert_eq!(run.try_(Actor::System, OrderCommand::Tick), Ok(None));
    assert_eq!(count(&run.ledger, TransactionKind::Clearance), 1);
}

#[test]
fn no_revision_is_allowed_when_the_terms_have_none() {
    let mut run = Run::new(10_000, 5, 0);
    run.delivered();
    assert_refused(run.try_(Actor::Buyer, revision("One more thing.")));
    assert_eq!(run.order.revisions_used, 0);
}

#[test]
fn work_follows_the_states() {
    let mut run = Run::standard();
    assert_wrong_state(run.try_(Actor::Buyer, requirements("Too early.")));
    assert_wrong_state(run.try_(Actor::Seller, deliver("Too early.")));
    run.paid();
    assert_wrong_state(run.try_(Actor::Seller, deliver("No requirements yet.")));
    assert_wrong_state(run.try_(Actor::Buyer, OrderCommand::Accept));
    run.apply(Actor::Buyer, requirements("Blue."));
    assert_wrong_state(run.try_(Actor::Buyer, requirements("Again.")));
    assert_wrong_state(run.try_(Actor::Buyer, OrderCommand::Accept));
    assert_wrong_state(run.try_(Actor::Buyer, revision("Not delivered yet.")));
    run.apply(Actor::Seller, deliver("Done."));
    assert_wrong_state(run.try_(Actor::Seller, deliver("Twice.")));
    assert_wrong_state(run.try_(Actor::Seller, extension(2)));
    run.apply(Actor::Buyer, OrderCommand::Accept);
    assert_wrong_state(run.try_(Actor::Buyer, OrderCommand::Accept));
    assert_wrong_state(run.try_(Actor::Buyer, dispute("Too late.")));
}

// ---------------------------------------------------------------------------
// Payment
// ---------------------------------------------------------------------------

#[test]
fn a_payment_must_match_the_total() {
    let run = Run::standard();
    let total = run.total();
    assert_refused(run.try_(Actor::System, pay(usd(total - 1))));
    assert_refused(run.try_(Actor::System, pay(usd(total + 1))));
    // The price alone is not the total: the service fee is missing.
    assert_refused(run.try_(Actor::System, pay(run.order.amounts.price)));
}

#[test]
fn a_payment_reported_twice_changes_nothing() {
    let mut run = Run::standard();
    run.paid();
    let total = run.order.amounts.total;
    assert_eq!(run.try_(Actor::System, pay(total)), Ok(None));
    run.wait(TimeDelta::days(1));
    assert_eq!(run.try_(Actor::System, pay(total)), Ok(None));
    assert_eq!(
        run.try_(
            Actor::System,
            OrderCommand::PaymentFailed {
                reason: "late report".into()
            }
        ),
        Ok(None)
    );
}

#[test]
fn a_failed_payment_waits_for_another() {
    let mut run = Run::standard();
    let failed = run.apply(
        Actor::System,
        OrderCommand::PaymentFailed {
            reason: "card declined".into(),
        },
    );
    assert_eq!(failed.change, OrderChange::PaymentFailed);
    assert_eq!(run.order.status, OrderStatus::AwaitingPayment);
    assert_eq!(run.order.payment_error.as_deref(), Some("card declined"));
    assert!(failed.transactions.is_empty());
    run.paid();
    assert_eq!(run.order.payment_error, None);
}

// ---------------------------------------------------------------------------
// The clock
// ---------------------------------------------------------------------------

#[test]
fn an_unpaid_order_expires() {
    let mut run = Run::standard();
    let expires_at = run.now + run.policy.unpaid_expiry;
    assert_eq!(run.order.next_deadline(&run.policy), Some(expires_at));
    run.wait(run.policy.unpaid_expiry - TimeDelta::seconds(1));
    assert_eq!(run.try_(Actor::System, OrderCommand::Tick), Ok(None));
    run.wait(TimeDelta::seconds(1));
    let expired = run.apply(Actor::System, OrderCommand::Tick);
    assert_eq!(expired.change, OrderChange::Cancelled);
    assert_eq!(run.order.status, OrderStatus::Cancelled);
    assert_eq!(run.order.cancelled_at, Some(run.now));
    assert!(expired.transactions.is_empty());
    assert_eq!(expired.refund_minor, None);
    assert_eq!(run.order.refunded_minor, 0);
    // A payment arriving now is the caller's to refund: the order ignores it.
    let total = run.order.amounts.total;
    assert_eq!(run.try_(Actor::System, pay(total)), Ok(None));
    assert_eq!(run.try_(Actor::System, OrderCommand::Tick), Ok(None));
}

#[test]
fn the_buyer_may_abandon_an_unpaid_order() {
    let mut run = Run::standard();
    assert_wrong_state(run.try_(Actor::Seller, cancel("")));
    let abandoned = run.apply(Actor::Buyer, cancel(""));
    assert_eq!(abandoned.change, OrderChange::Cancelled);
    assert!(abandoned.transactions.is_empty());
    assert_eq!(abandoned.refund_minor, None);
}

#[test]
fn the_clock_does_nothing_before_a_deadline() {
    let mut run = Run::standard();
    assert_eq!(run.try_(Actor::System, OrderCommand::Tick), Ok(None));
    run.paid();
    run.wait(TimeDelta::days(365));
    // Waiting for requirements has no deadline.
    assert_eq!(run.try_(Actor::System, OrderCommand::Tick), Ok(None));
    run.apply(Actor::Buyer, requirements("Blue."));
    run.wait(TimeDelta::days(5) - TimeDelta::seconds(1));
    assert_eq!(run.try_(Actor::System, OrderCommand::Tick), Ok(None));
}

#[test]
fn an_order_past_its_due_date_is_flagged_late_once() {
    let mut run = Run::standard();
    run.started();
    let due = run.order.due_at.unwrap();
    run.now = due;
    let late = run.apply(Actor::System, OrderCommand::Tick);
    assert_eq!(late.change, OrderChange::Late);
    assert!(run.order.late);
    assert_eq!(run.order.status, OrderStatus::InProgress);
    assert!(late.transactions.is_empty());
    assert_eq!(run.order.next_deadline(&run.policy), None);
    run.wait(TimeDelta::days(1));
    assert_eq!(run.try_(Actor::System, OrderCommand::Tick), Ok(None));
    // A late delivery is still a delivery.
    run.apply(Actor::Seller, deliver("Sorry for the delay."));
    assert_eq!(run.order.status, OrderStatus::Delivered);
    assert!(run.order.late);
}

#[test]
fn a_delivery_after_the_due_date_is_late_even_without_a_tick() {
    let mut run = Run::standard();
    run.started();
    run.wait(TimeDelta::days(6));
    run.apply(Actor::Seller, deliver("Here."));
    assert!(run.order.late);
}

#[test]
fn the_buyer_cancels_a_late_order_at_once_with_a_full_refund() {
    let mut run = Run::standard();
    run.started();
    run.wait(TimeDelta::days(5));
    run.apply(Actor::System, OrderCommand::Tick);
    let cancelled = run.apply(Actor::Buyer, cancel(""));
    assert_eq!(cancelled.change, OrderChange::Cancelled);
    assert_eq!(run.order.status, OrderStatus::Cancelled);
    assert_eq!(cancelled.refund_minor, Some(run.total()));
    assert_eq!(refund_of(&cancelled), run.total());
    assert_eq!(run.order.refunded_minor, run.total());
    assert_eq!(run.balance(Account::Escrow), 0);
    assert_eq!(run.balance(Account::Provider), 0);
}

#[test]
fn a_quiet_delivery_completes_itself() {
    let mut run = Run::standard();
    run.delivered();
    let delivered_at = run.now;
    run.wait(run.policy.auto_complete_after - TimeDelta::seconds(1));
    assert_eq!(run.try_(Actor::System, OrderCommand::Tick), Ok(None));
    run.wait(TimeDelta::seconds(1));
    let completed = run.apply(Actor::System, OrderCommand::Tick);
    assert_eq!(completed.change, OrderChange::Completed);
    assert_eq!(run.order.status, OrderStatus::Completed);
    assert_eq!(
        run.order.completed_at,
        Some(delivered_at + run.policy.auto_complete_after)
    );
    assert_eq!(completed.transactions.len(), 1);
    assert_eq!(completed.transactions[0].kind, TransactionKind::Settlement);
    assert_eq!(run.balance(Account::Escrow), 0);
    assert_eq!(run.seller_pending(), -8_000);
}

// ---------------------------------------------------------------------------
// Extensions
// ---------------------------------------------------------------------------

#[test]
fn an_approved_extension_moves_the_due_date() {
    let mut run = Run::standard();
    run.started();
    let due = run.order.due_at.unwrap();
    let asked = run.apply(Actor::Seller, extension(3));
    assert_eq!(asked.change, OrderChange::ExtensionRequested);
    assert_eq!(run.order.extension.as_ref().map(|e| e.days), Some(3));
    assert_refused(run.try_(Actor::Seller, extension(2)));
    let approved = run.apply(
        Actor::Buyer,
        OrderCommand::AnswerExtension { approve: true },
    );
    assert_eq!(approved.change, OrderChange::ExtensionApproved);
    assert_eq!(run.order.due_at, Some(due + TimeDelta::days(3)));
    assert_eq!(run.order.terms.delivery_days, 8);
    assert_eq!(run.order.extension, None);
    assert_refused(run.try_(
        Actor::Buyer,
        OrderCommand::AnswerExtension { approve: true },
    ));
}

#[test]
fn a_rejected_extension_changes_nothing_else() {
    let mut run = Run::standard();
    run.started();
    let due = run.order.due_at;
    run.apply(Actor::Seller, extension(3));
    let rejected = run.apply(
        Actor::Buyer,
        OrderCommand::AnswerExtension { approve: false },
    );
    assert_eq!(rejected.change, OrderChange::ExtensionRejected);
    assert_eq!(run.order.due_at, due);
    assert_eq!(run.order.terms.delivery_days, 5);
    assert_eq!(run.order.extension, None);
    // The seller may ask again.
    run.apply(Actor::Seller, extension(1));
}

#[test]
fn an_extension_has_bounded_days_and_a_reason() {
    let mut run = Run::standard();
    run.started();
    let max = run.policy.max_extension_days;
    assert_invalid(run.try_(Actor::Seller, extension(0)), "days");
    assert_invalid(run.try_(Actor::Seller, extension(max + 1)), "days");
    assert!(matches!(
        run.try_(Actor::Seller, extension(max)),
        Ok(Some(_))
    ));
    assert_invalid(
        run.try_(
            Actor::Seller,
            OrderCommand::RequestExtension {
                days: 2,
                reason: "  ".into(),
            },
        ),
        "reason",
    );
}

#[test]
fn an_extension_that_ends_in_the_future_lifts_the_late_flag() {
    let mut run = Run::standard();
    run.started();
    run.wait(TimeDelta::days(5));
    run.apply(Actor::System, OrderCommand::Tick);
    assert!(run.order.late);
    run.apply(Actor::Seller, extension(2));
    run.apply(
        Actor::Buyer,
        OrderCommand::AnswerExtension { approve: true },
    );
    assert!(!run.order.late);
    assert_eq!(
        run.order.next_deadline(&run.policy),
        Some(run.now + TimeDelta::days(2))
    );
}

#[test]
fn a_delivery_drops_a_pending_extension() {
    let mut run = Run::standard();
    run.started();
    run.apply(Actor::Seller, extension(3));
    run.apply(Actor::Seller, deliver("Done early after all."));
    assert_eq!(run.order.extension, None);
    assert_refused(run.try_(
        Actor::Buyer,
        OrderCommand::AnswerExtension { approve: true },
    ));
}

// ---------------------------------------------------------------------------
// Cancellation
// ---------------------------------------------------------------------------

#[test]
fn a_mutual_cancellation_refunds_in_full() {
    let mut run = Run::standard();
    run.started();
    let asked = run.apply(Actor::Buyer, cancel("we changed our plans"));
    assert_eq!(asked.change, OrderChange::CancellationRequested);
    assert_eq!(run.order.status, OrderStatus::InProgress);
    assert_eq!(
        run.order.cancellation.as_ref().map(|c| c.by),
        Some(Side::Buyer)
    );
    assert!(asked.transactions.is_empty());
    // The same side asking again is refused.
    assert_refused(run.try_(Actor::Buyer, cancel("please")));
    let accepted = run.apply(
        Actor::Seller,
        OrderCommand::AnswerCancellation { accept: true },
    );
    assert_eq!(accepted.change, OrderChange::Cancelled);
    assert_eq!(run.order.status, OrderStatus::Cancelled);
    assert_eq!(accepted.refund_minor, Some(run.total()));
    assert_eq!(refund_of(&accepted), run.total());
    assert_eq!(run.balance(Account::Escrow), 0);
    assert_eq!(run.balance(Account::Provider), 0);
}

#[test]
fn a_declined_cancellation_clears_the_request() {
    let mut run = Run::standard();
    run.delivered();
    run.apply(Actor::Seller, cancel("I cannot finish the revisions"));
    let declined = run.apply(
        Actor::Buyer,
        OrderCommand::AnswerCancellation { accept: false },
    );
    assert_eq!(declined.change, OrderChange::CancellationDeclined);
    assert_eq!(run.order.cancellation, None);
    assert_eq!(run.order.status, OrderStatus::Delivered);
    assert!(declined.transactions.is_empty());
    assert_refused(run.try_(
        Actor::Buyer,
        OrderCommand::AnswerCancellation { accept: true },
    ));
}

#[test]
fn both_sides_asking_to_cancel_is_agreement() {
    let mut run = Run::standard();
    run.paid();
    run.apply(Actor::Seller, cancel("I am ill"));
    let cancelled = run.apply(Actor::Buyer, cancel("fine by me"));
    assert_eq!(cancelled.change, OrderChange::Cancelled);
    assert_eq!(cancelled.refund_minor, Some(run.total()));
}

#[test]
fn a_cancellation_request_needs_a_reason() {
    let mut run = Run::standard();
    run.started();
    assert_invalid(run.try_(Actor::Buyer, cancel("   ")), "reason");
}

#[test]
fn an_admin_cancels_with_a_full_refund() {
    let mut run = Run::standard();
    run.delivered();
    let cancelled = run.apply(Actor::Admin, cancel(""));
    assert_eq!(cancelled.change, OrderChange::Cancelled);
    assert_eq!(run.order.status, OrderStatus::Cancelled);
    assert_eq!(cancelled.refund_minor, Some(run.total()));
    assert_eq!(refund_of(&cancelled), run.total());
    assert_eq!(run.balance(Account::Escrow), 0);
    // A final order stays final.
    assert_wrong_state(run.try_(Actor::Admin, cancel("")));
    assert_wrong_state(run.try_(Actor::Buyer, dispute("where is my money")));
}

// ---------------------------------------------------------------------------
// Disputes
// ---------------------------------------------------------------------------

fn disputed() -> Run {
    let mut run = Run::standard();
    run.delivered();
    let opened = run.apply(Actor::Buyer, dispute("the files are empty"));
    assert_eq!(opened.change, OrderChange::Disputed);
    assert_eq!(run.order.status, OrderStatus::Disputed);
    let dispute = run.order.dispute.as_ref().unwrap();
    assert_eq!(dispute.opened_by, Side::Buyer);
    assert_eq!(dispute.from, OrderStatus::Delivered);
    run
}

#[test]
fn a_dispute_freezes_the_order() {
    let mut run = disputed();
    // The quiet-delivery clock stops.
    run.wait(TimeDelta::days(30));
    assert_eq!(run.order.next_deadline(&run.policy), None);
    assert_eq!(run.try_(Actor::System, OrderCommand::Tick), Ok(None));
    assert_wrong_state(run.try_(Actor::Buyer, OrderCommand::Accept));
    assert_wrong_state(run.try_(Actor::Buyer, revision("again")));
    assert_wrong_state(run.try_(Actor::Seller, deliver("again")));
    assert_wrong_state(run.try_(Actor::Seller, extension(2)));
    assert_wrong_state(run.try_(Actor::Buyer, cancel("let me out")));
    assert_wrong_state(run.try_(Actor::Seller, cancel("let me out")));
    assert_wrong_state(run.try_(Actor::Seller, dispute("me too")));
    assert_eq!(run.balance(Account::Escrow), -run.total());
}

#[test]
fn a_dispute_freezes_pending_requests_too() {
    let mut run = Run::standard();
    run.started();
    run.apply(Actor::Seller, extension(2));
    run.apply(Actor::Seller, cancel("the brief changed"));
    run.apply(Actor::Buyer, dispute("the seller vanished"));
    assert_wrong_state(run.try_(
        Actor::Buyer,
        OrderCommand::AnswerExtension { approve: true },
    ));
    assert_wrong_state(run.try_(
        Actor::Buyer,
        OrderCommand::AnswerCancellation { accept: true },
    ));
}

#[test]
fn an_admin_resolves_a_dispute_for_the_seller() {
    let mut run = disputed();
    let resolved = run.apply(Actor::Admin, OrderCommand::Resolve(Resolution::Complete));
    assert_eq!(resolved.change, OrderChange::DisputeResolved);
    assert_eq!(run.order.status, OrderStatus::Completed);
    assert_eq!(resolved.refund_minor, None);
    assert_eq!(resolved.transactions.len(), 1);
    assert_eq!(resolved.transactions[0].kind, TransactionKind::Settlement);
    assert_eq!(run.seller_pending(), -8_000);
    assert_eq!(run.balance(Account::Escrow), 0);
}

#[test]
fn an_admin_refunds_a_dispute_in_full() {
    let mut run = disputed();
    let total = run.total();
    let resolved = run.apply(
        Actor::Admin,
        OrderCommand::Resolve(Resolution::Refund {
            amount_minor: total,
        }),
    );
    assert_eq!(resolved.change, OrderChange::DisputeResolved);
    assert_eq!(run.order.status, OrderStatus::Cancelled);
    assert_eq!(resolved.refund_minor, Some(total));
    assert_eq!(refund_of(&resolved), total);
    assert_eq!(count(&run.ledger, TransactionKind::Settlement), 0);
    assert_eq!(run.balance(Account::Escrow), 0);
    assert_eq!(run.balance(Account::Provider), 0);
}

#[test]
fn an_admin_refunds_a_dispute_in_part() {
    let mut run = disputed();
    let resolved = run.apply(
        Actor::Admin,
        OrderCommand::Resolve(Resolution::Refund {
            amount_minor: 5_000,
        }),
    );
    assert_eq!(resolved.change, OrderChange::DisputeResolved);
    assert_eq!(run.order.status, OrderStatus::Completed);
    assert_eq!(run.order.refunded_minor, 5_000);
    assert_eq!(resolved.refund_minor, Some(5_000));
    assert_eq!(refund_of(&resolved), 5_000);
    let kinds: Vec<_> = resolved.transactions.iter().map(|t| t.kind).collect();
    assert_eq!(
        kinds,
        [TransactionKind::Refund, TransactionKind::Settlement]
    );
    // The other $50.00 of the price settles: 20% commission on it.
    assert_eq!(run.seller_pending(), -4_000);
    assert_eq!(run.balance(Account::PlatformRevenue), -(550 + 1_000));
    assert_eq!(run.balance(Account::Escrow), 0);
    assert_eq!(run.balance(Account::Provider), run.total() - 5_000);
    // And clears later.
    run.wait(run.policy.clearance_after);
    run.apply(Actor::System, OrderCommand::Tick);
    assert_eq!(run.seller_available(), -4_000);
}

#[test]
fn a_refund_must_be_part_of_the_total() {
    let run = disputed();
    for amount_minor in [0, -1, run.total() + 1] {
        assert_invalid(
            run.try_(
                Actor::Admin,
                OrderCommand::Resolve(Resolution::Refund { amount_minor }),
            ),
            "amount_minor",
        );
    }
    let mut undisputed = Run::standard();
    undisputed.delivered();
    assert_wrong_state(undisputed.try_(Actor::Admin, OrderCommand::Resolve(Resolution::Complete)));
}

// ---------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------

#[test]
fn free_text_is_required_and_bounded() {
    let mut run = Run::standard();
    run.paid();
    assert_invalid(run.try_(Actor::Buyer, requirements("")), "requirements");
    assert_invalid(
        run.try_(Actor::Buyer, requirements(" \n\t ")),
        "requirements",
    );
    let too_long = "x".repeat(MAX_TEXT_CHARS + 1);
    assert_invalid(
        run.try_(Actor::Buyer, requirements(&too_long)),
        "requirements",
    );
    // Characters are counted, not bytes.
    let longest = "é".repeat(MAX_TEXT_CHARS);
    assert!(matches!(
        run.try_(Actor::Buyer, requirements(&longest)),
        Ok(Some(_))
    ));
    run.apply(Actor::Buyer, requirements("Blue."));
    assert_invalid(run.try_(Actor::Seller, deliver(" ")), "message");
    assert_invalid(run.try_(Actor::Seller, deliver(&too_long)), "message");
    assert_invalid(
        run.try_(
            Actor::Seller,
            OrderCommand::Deliver {
                message: "Many files.".into(),
                files: vec!["media/f.png".into(); MAX_DELIVERY_FILES + 1],
            },
        ),
        "files",
    );
    run.apply(Actor::Seller, deliver("Done."));
    assert_invalid(run.try_(Actor::Buyer, revision("")), "reason");
    assert_invalid(run.try_(Actor::Buyer, dispute("")), "reason");
    assert_invalid(run.try_(Actor::Buyer, cancel(&too_long)), "reason");
    // A refused text uses up nothing.
    assert_eq!(run.order.revisions_used, 0);
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

/// Free text as a client might send it.
#[derive(Clone, Copy, Debug)]
enum Text {
    Empty,
    Blank,
    Fine,
    TooLong,
}

impl Text {
    fn render(self) -> String {
        match self {
            Text::Empty => String::new(),
            Text::Blank => "  \n ".into(),
            Text::Fine => "Looks good to me.".into(),
            Text::TooLong => "y".repeat(MAX_TEXT_CHARS + 1),
        }
    }
}

/// How much an admin refunds, relative to the order.
#[derive(Clone, Copy, Debug)]
enum RefundPick {
    Zero,
    Full,
    Over,
    Price,
    AllButOne,
    /// This many basis points of the total (at least one minor unit).
    Part(i64),
}

/// A command with its amounts left relative to the order it is applied to.
#[derive(Clone, Debug)]
enum Cmd {
    /// Pay the total plus `off` (0: the exact total).
    Pay(i64),
    PayFail,
    Requirements(Text),
    Deliver(Text, usize),
    Accept,
    Revision(Text),
    Extension(u32, Text),
    AnswerExtension(bool),
    /// The side that asks when the actor is the natural one.
    Cancel(Side, Text),
    AnswerCancellation(Side, bool),
    Dispute(Side, Text),
    ResolveComplete,
    ResolveRefund(RefundPick),
    Tick,
}

impl Cmd {
    /// Who would normally send this.
    fn natural_actor(&self) -> Actor {
        let side = |side: &Side| match side {
            Side::Buyer => Actor::Buyer,
            Side::Seller => Actor::Seller,
        };
        match self {
            Cmd::Pay(_) | Cmd::PayFail | Cmd::Tick => Actor::System,
            Cmd::Requirements(_) | Cmd::Accept | Cmd::Revision(_) | Cmd::AnswerExtension(_) => {
                Actor::Buyer
            }
            Cmd::Deliver(..) | Cmd::Extension(..) => Actor::Seller,
            Cmd::Cancel(s, _) | Cmd::AnswerCancellation(s, _) | Cmd::Dispute(s, _) => side(s),
            Cmd::ResolveComplete | Cmd::ResolveRefund(_) => Actor::Admin,
        }
    }

    /// Who may send this at all.
    fn allowed(&self) -> &'static [Actor] {
        match self {
            Cmd::Pay(_) | Cmd::PayFail | Cmd::Tick => &[Actor::System],
            Cmd::Requirements(_) | Cmd::Accept | Cmd::Revision(_) | Cmd::AnswerExtension(_) => {
                &[Actor::Buyer]
            }
            Cmd::Deliver(..) | Cmd::Extension(..) => &[Actor::Seller],
            Cmd::Cancel(..) => &[Actor::Buyer, Actor::Seller, Actor::Admin],
            Cmd::AnswerCancellation(..) | Cmd::Dispute(..) => &[Actor::Buyer, Actor::Seller],
            Cmd::ResolveComplete | Cmd::ResolveRefund(_) => &[Actor::Admin],
        }
    }

    fn command(&self, order: &Order) -> OrderCommand {
        let total = order.amounts.total.amount_minor;
        match self {
            Cmd::Pay(off) => pay(usd(total + off)),
            Cmd::PayFail => OrderCommand::PaymentFailed {
                reason: "card declined".into(),
            },
            Cmd::Requirements(text) => OrderCommand::SubmitRequirements {
                text: text.render(),
            },
            Cmd::Deliver(text, files) => OrderCommand::Deliver {
                message: text.render(),
                files: (0..*files).map(|i| format!("media/{i}.png")).collect(),
            },
            Cmd::Accept => OrderCommand::Accept,
            Cmd::Revision(text) => OrderCommand::RequestRevision {
                reason: text.render(),
            },
            Cmd::Extension(days, text) => OrderCommand::RequestExtension {
                days: *days,
                reason: text.render(),
            },
            Cmd::AnswerExtension(approve) => OrderCommand::AnswerExtension { approve: *approve },
            Cmd::Cancel(_, text) => OrderCommand::Cancel {
                reason: text.render(),
            },
            Cmd::AnswerCancellation(_, accept) => {
                OrderCommand::AnswerCancellation { accept: *accept }
            }
            Cmd::Dispute(_, text) => OrderCommand::OpenDispute {
                reason: text.render(),
            },
            Cmd::ResolveComplete => OrderCommand::Resolve(Resolution::Complete),
            Cmd::ResolveRefund(pick) => {
                let amount_minor = match *pick {
                    RefundPick::Zero => 0,
                    RefundPick::Full => total,
                    RefundPick::Over => total + 1,
                    RefundPick::Price => order.amounts.price.amount_minor,
                    RefundPick::AllButOne => total - 1,
                    RefundPick::Part(bps) => (total * bps / 10_000).max(1),
                };
                OrderCommand::Resolve(Resolution::Refund { amount_minor })
            }
            Cmd::Tick => OrderCommand::Tick,
        }
    }
}

/// One step of a run: who, what, and how long after the previous step.
#[derive(Clone, Debug)]
struct Step {
    /// `None`: the command's natural actor.
    actor: Option<Actor>,
    cmd: Cmd,
    wait_seconds: i64,
}

fn text() -> impl Strategy<Value = Text> {
    prop_oneof![
        8 => Just(Text::Fine),
        1 => Just(Text::Empty),
        1 => Just(Text::Blank),
        1 => Just(Text::TooLong),
    ]
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buyer), Just(Side::Seller)]
}

fn refund_pick() -> impl Strategy<Value = RefundPick> {
    prop_oneof![
        Just(RefundPick::Zero),
        Just(RefundPick::Full),
        Just(RefundPick::Over),
        Just(RefundPick::Price),
        Just(RefundPick::AllButOne),
        (1i64..10_000).prop_map(RefundPick::Part),
    ]
}

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        3 => prop_oneof![4 => Just(0i64), 1 => -1_000i64..1_000].prop_map(Cmd::Pay),
        1 => Just(Cmd::PayFail),
        3 => text().prop_map(Cmd::Requirements),
        4 => (text(), prop_oneof![4 => 0usize..=3, 1 => 0usize..=12])
            .prop_map(|(text, files)| Cmd::Deliver(text, files)),
        2 => Just(Cmd::Accept),
        3 => text().prop_map(Cmd::Revision),
        2 => (0u32..=35, text()).prop_map(|(days, text)| Cmd::Extension(days, text)),
        2 => any::<bool>().prop_map(Cmd::AnswerExtension),
        2 => (side(), text()).prop_map(|(side, text)| Cmd::Cancel(side, text)),
        2 => (side(), any::<bool>()).prop_map(|(side, accept)| Cmd::AnswerCancellation(side, accept)),
        2 => (side(), text()).prop_map(|(side, text)| Cmd::Dispute(side, text)),
        1 => Just(Cmd::ResolveComplete),
        2 => refund_pick().prop_map(Cmd::ResolveRefund),
        5 => Just(Cmd::Tick),
    ]
}

fn actor() -> impl Strategy<Value = Option<Actor>> {
    prop_oneof![
        3 => Just(None),
        1 => prop::sample::select(ACTORS.to_vec()).prop_map(Some),
    ]
}

/// Seconds to wait before a step: none, minutes, hours or days, so that
/// every deadline (24 hours, 3 days, 14 days, up to 90+30 days) is both
/// approached and passed.
fn wait_seconds() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => Just(0i64),
        2 => 1i64..3_600,
        3 => (1i64..=48).prop_map(|h| h * 3_600),
        3 => (1i64..=20).prop_map(|d| d * 86_400),
        1 => (21i64..=120).prop_map(|d| d * 86_400),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    (actor(), cmd(), wait_seconds()).prop_map(|(actor, cmd, wait_seconds)| Step {
        actor,
        cmd,
        wait_seconds,
    })
}

/// The steps that take a placed order along the expected path: paid, then
/// started, then delivered.
fn expected_path(len: usize) -> impl Iterator<Item = Step> {
    [
        Cmd::Pay(0),
        Cmd::Requirements(Text::Fine),
        Cmd::Deliver(Text::Fine, 1),
    ]
    .into_iter()
    .take(len)
    .map(|cmd| Step {
        actor: None,
        cmd,
        wait_seconds: 60,
    })
}

/// Up to 40 steps: a random part of the expected path (so that a quarter of
/// the runs start from each of the first four states), then anything.
fn steps() -> impl Strategy<Value = Vec<Step>> {
    (0usize..=3, prop::collection::vec(step(), 0..=37)).prop_map(|(len, rest)| {
        let mut steps: Vec<Step> = expected_path(len).collect();
        steps.extend(rest);
        steps
    })
}

/// An order as placed: price, delivery days, revisions.
fn order_terms() -> impl Strategy<Value = (i64, u32, u32)> {
    (500i64..=5_000_000, 1u32..=90, 0u32..=5)
}

/// Checks one decision against the order it was made from.
fn check_decision(before: &Order, decision: &Decision, now: DateTime<Utc>) -> Result<(), String> {
    let after = &decision.order;
    let fail = |what: &str| Err(format!("{what}: {before:?} -> {decision:?}"));
    if after.version != before.version {
        return fail("decide changed the version");
    }
    if after.updated_at != now {
        return fail("updated_at is not now");
    }
    if (
        after.id,
        after.buyer_id,
        after.seller_id,
        after.created_at,
        after.amounts,
    ) != (
        before.id,
        before.buyer_id,
        before.seller_id,
        before.created_at,
        before.amounts,
    ) {
        return fail("an identity field changed");
    }
    if before.status.is_final() && after.status != before.status {
        return fail("a final order changed status");
    }
    for transaction in &decision.transactions {
        if !transaction.is_balanced() {
            return fail("an unbalanced transaction");
        }
        if transaction.order_id != Some(before.id) {
            return fail("a transaction for another order");
        }
        if transaction.at != now {
            return fail("a transaction not dated now");
        }
        if transaction.postings.iter().any(|p| p.amount_minor == 0) {
            return fail("a zero posting");
        }
    }
    let refunds: Vec<i64> = decision
        .transactions
        .iter()
        .filter(|t| t.kind == TransactionKind::Refund)
        .map(escrow_debit)
        .collect();
    let refunded = match refunds.as_slice() {
        [] => None,
        [one] => Some(*one),
        _ => return fail("several refunds in one decision"),
    };
    if decision.refund_minor != refunded {
        return fail("refund_minor is not the refund transaction's amount");
    }
    if refunded.is_some_and(|r| r <= 0) {
        return fail("a refund of nothing");
    }
    if after.refunded_minor != before.refunded_minor + refunded.unwrap_or(0) {
        return fail("refunded_minor does not follow the refund");
    }
    let status_fits = match decision.change {
        OrderChange::Paid => after.status == OrderStatus::AwaitingRequirements,
        OrderChange::RequirementsSubmitted => after.status == OrderStatus::InProgress,
        OrderChange::Late => after.status == before.status && after.late && !before.late,
        OrderChange::Cancelled => after.status == OrderStatus::Cancelled,
        OrderChange::Completed => after.status == OrderStatus::Completed,
        OrderChange::Delivered => after.status == OrderStatus::Delivered,
        OrderChange::RevisionRequested => after.status == OrderStatus::RevisionRequested,
        OrderChange::Disputed => after.status == OrderStatus::Disputed,
        OrderChange::DisputeResolved => {
            before.status == OrderStatus::Disputed && after.status.is_final()
        }
        OrderChange::Cleared => after.cleared_at == Some(now),
        _ => after.status == before.status,
    };
    if !status_fits {
        return fail("the change does not match the new status");
    }
    Ok(())
}

/// Checks that an order is in a legal state and that the ledger of its
/// whole life balances.
fn check_order(order: &Order, ledger: &[Transaction], initial: &OrderTerms) -> Result<(), String> {
    let fail = |what: &str| Err(format!("{what}: {order:?}\nledger: {ledger:?}"));
    let status = order.status;
    let total = order.amounts.total.amount_minor;

    // (a) The state is legal.
    let paid = order.paid_at.is_some();
    if status == OrderStatus::AwaitingPayment && (paid || order.requirements.is_some()) {
        return fail("awaiting payment yet paid or started");
    }
    if status.holds_escrow() && !paid {
        return fail("holds escrow without a payment");
    }
    if status == OrderStatus::AwaitingRequirements && order.requirements.is_some() {
        return fail("awaiting requirements that were given");
    }
    if (status == OrderStatus::Completed) != order.completed_at.is_some() {
        return fail("completed <=> completed_at");
    }
    if (status == OrderStatus::Cancelled) != order.cancelled_at.is_some() {
        return fail("cancelled <=> cancelled_at");
    }
    if status == OrderStatus::Completed && !paid {
        return fail("completed without a payment");
    }
    match (&order.dispute, status) {
        (None, OrderStatus::Disputed) => return fail("disputed without a dispute"),
        (Some(_), s) if !(s == OrderStatus::Disputed || s.is_final()) => {
            return fail("a dispute on an order that is neither disputed nor final")
        }
        (Some(dispute), _)
            if !dispute.from.holds_escrow() || dispute.from == OrderStatus::Disputed =>
        {
            return fail("a dispute opened from the wrong state")
        }
        _ => {}
    }
    if order.revisions_used > order.terms.revisions {
        return fail("more revisions than the terms allow");
    }
    if order.terms.revisions != initial.revisions
        || order.terms.delivery_days < initial.delivery_days
    {
        return fail("the terms changed beyond an extension");
    }
    if matches!(
        status,
        OrderStatus::InProgress | OrderStatus::RevisionRequested | OrderStatus::Delivered
    ) && (order.requirements.is_none() || order.due_at.is_none() || order.started_at.is_none())
    {
        return fail("working without requirements or a due date");
    }
    if order.late && order.due_at.is_none_or(|due| due > order.updated_at) {
        return fail("late without a past due date");
    }
    if let Some(started) = order.started_at {
        let days = TimeDelta::days(i64::from(order.terms.delivery_days));
        if order.due_at != Some(started + days) {
            return fail("the due date is not the start plus the delivery days");
        }
    }
    if !(0..=total).contains(&order.refunded_minor) {
        return fail("refunded_minor outside 0..=total");
    }
    if order.cleared_at.is_some() && status != OrderStatus::Completed {
        return fail("cleared but not completed");
    }
    if status == OrderStatus::Delivered && order.deliveries.is_empty() {
        return fail("delivered without a delivery");
    }
    if order.extension.is_some()
        && !matches!(
            status,
            OrderStatus::InProgress | OrderStatus::RevisionRequested | OrderStatus::Disputed
        )
    {
        return fail("an extension request outside the work");
    }
    if status == OrderStatus::Cancelled && paid && order.refunded_minor != total {
        return fail("cancelled after payment without a full refund");
    }
    if status != OrderStatus::Cancelled
        && status != OrderStatus::Completed
        && order.refunded_minor != 0
    {
        return fail("a refund on an open order");
    }

    // (b) The money balances.
    let (payments, settlements, clearances) = (
        count(ledger, TransactionKind::Payment),
        count(ledger, TransactionKind::Settlement),
        count(ledger, TransactionKind::Clearance),
    );
    if payments > 1 || settlements > 1 || clearances > 1 {
        return fail("a payment, settlement or clearance recorded twice");
    }
    if count(ledger, TransactionKind::Withdrawal) > 0 {
        return fail("an order made a withdrawal");
    }
    if ledger.iter().any(|t| !t.is_balanced()) {
        return fail("an unbalanced transaction");
    }
    let sum_escrow = |kind| -> i64 {
        ledger
            .iter()
            .filter(|t| t.kind == kind)
            .map(escrow_debit)
            .sum()
    };
    let paid_minor = -sum_escrow(TransactionKind::Payment);
    let refunded_minor = sum_escrow(TransactionKind::Refund);
    let settled_minor = sum_escrow(TransactionKind::Settlement);
    if paid_minor != if paid { total } else { 0 } || (payments == 1) != paid {
        return fail("the payment in the ledger is not the total");
    }
    if refunded_minor != order.refunded_minor {
        return fail("the ledger's refunds differ from refunded_minor");
    }
    let sums = balances(ledger);
    let balance = |account| sums.get(&account).copied().unwrap_or(0);
    let escrow = balance(Account::Escrow);
    if escrow != -(paid_minor - refunded_minor - settled_minor) {
        return fail("escrow is not what was paid less refunds and settlement");
    }
    if escrow > 0 {
        return fail("escrow released more than it held");
    }
    if status.is_final() && escrow != 0 {
        return fail("a final order left money in escrow");
    }
    if status.holds_escrow() && escrow != -total {
        return fail("an open order does not hold the whole total");
    }
    let provider = balance(Account::Provider);
    if provider != paid_minor - refunded_minor || provider < 0 {
        return fail("the provider balance is not paid less refunded");
    }
    let pending = balance(Account::SellerPending(order.seller_id));
    let available = balance(Account::SellerAvailable(order.seller_id));
    let platform = balance(Account::PlatformRevenue);
    if pending > 0 || available > 0 || platform > 0 {
        return fail("a liability with a debit balance");
    }
    if sums.keys().any(|account| {
        !matches!(
            account,
            Account::Provider | Account::Escrow | Account::PlatformRevenue
        ) && *account != Account::SellerPending(order.seller_id)
            && *account != Account::SellerAvailable(order.seller_id)
    }) {
        return fail("money moved to an account foreign to the order");
    }
    if status.is_final() && refunded_minor - pending - available - platform != paid_minor {
        return fail("refunds, earnings and revenue do not add up to the payment");
    }
    if (settlements == 1) != (status == OrderStatus::Completed) {
        return fail("settled <=> completed");
    }
    if status == OrderStatus::Completed {
        let split = order.amounts.split(order.refunded_minor);
        if (-platform, -(pending + available)) != (split.platform, split.seller_net) {
            return fail("the settlement is not the split of the total");
        }
    }
    if (clearances == 1) != order.cleared_at.is_some() {
        return fail("cleared <=> a clearance");
    }
    if order.cleared_at.is_some() && pending != 0 {
        return fail("cleared but earnings still pending");
    }
    if order.cleared_at.is_none() && available != 0 {
        return fail("earnings available before clearance");
    }
    Ok(())
}

/// Plays `steps` on a placed order; returns the final run for more checks.
fn play(price: i64, days: u32, revisions: u32, steps: &[Step]) -> Result<Run, TestCaseError> {
    let mut run = Run::new(price, days, revisions);
    let initial = run.order.terms.clone();
    check_order(&run.order, &run.ledger, &initial).map_err(TestCaseError::fail)?;
    for (i, step) in steps.iter().enumerate() {
        run.wait(TimeDelta::seconds(step.wait_seconds));
        let by = step.actor.unwrap_or_else(|| step.cmd.natural_actor());
        let command = step.cmd.command(&run.order);
        let is_tick = command == OrderCommand::Tick;
        let deadline = run.order.next_deadline(&run.policy);
        let result = run.try_(by, command);
        if is_tick && by == Actor::System {
            let due = deadline.is_some_and(|at| at <= run.now);
            prop_assert_eq!(
                matches!(result, Ok(Some(_))),
                due,
                "step {}: tick at {} with deadline {:?}: {:?}",
                i,
                run.now,
                deadline,
                result
            );
        }
        let not_allowed = matches!(result, Err(OrderError::NotAllowed { .. }));
        if not_allowed == step.cmd.allowed().contains(&by) {
            return Err(TestCaseError::fail(format!(
                "step {i}: {by:?} {:?} on {:?}: {result:?}",
                step.cmd, run.order
            )));
        }
        if let Ok(Some(decision)) = result {
            check_decision(&run.order, &decision, run.now)
                .map_err(|e| TestCaseError::fail(format!("step {i}: {e}")))?;
            run.store(&decision);
            // The clock does one thing at a time, and not twice.
            if is_tick {
                let again = run.try_(Actor::System, OrderCommand::Tick);
                prop_assert_eq!(again, Ok(None), "step {}: a second tick acted", i);
            }
        }
        check_order(&run.order, &run.ledger, &initial)
            .map_err(|e| TestCaseError::fail(format!("after step {i}: {e}")))?;
    }
    Ok(run)
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        // A failure becomes an example test here rather than a file.
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config(2_000))]

    /// Any sequence of commands, sensible or not, keeps the order legal and
    /// the ledger balanced.
    #[test]
    fn any_sequence_keeps_the_order_legal_and_the_money_balanced(
        (price, days, revisions) in order_terms(),
        steps in steps(),
    ) {
        play(price, days, revisions, &steps)?;
    }
}

proptest! {
    #![proptest_config(config(500))]

    /// Once the parties stop, the clock alone ends every order that has a
    /// deadline and leaves no money stuck: an unpaid order is cancelled, a
    /// delivery is completed, the seller's earnings clear.
    #[test]
    fn the_clock_leaves_no_money_stuck(
        (price, days, revisions) in order_terms(),
        steps in steps(),
    ) {
        let mut run = play(price, days, revisions, &steps)?;
        let initial = terms(days, revisions);
        for _ in 0..3 {
            run.wait(TimeDelta::days(400));
            if let Some(decision) = run.try_(Actor::System, OrderCommand::Tick)? {
                check_decision(&run.order, &decision, run.now).map_err(TestCaseError::fail)?;
                run.store(&decision);
                check_order(&run.order, &run.ledger, &initial).map_err(TestCaseError::fail)?;
            }
        }
        let status = run.order.status;
        prop_assert!(
            !matches!(status, OrderStatus::AwaitingPayment | OrderStatus::Delivered),
            "the clock left an order {status:?}"
        );
        if status == OrderStatus::Completed {
            let owed = run.order.amounts.split(run.order.refunded_minor).seller_net;
            prop_assert_eq!(run.order.cleared_at.is_some(), owed > 0);
            prop_assert_eq!(run.seller_pending(), 0);
            prop_assert_eq!(run.seller_available(), -owed);
        }
        prop_assert_eq!(run.order.next_deadline(&run.policy), None);
    }
}
