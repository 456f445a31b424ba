//! Reviews: once an order completes, each side rates the other once, within
//! a window, and neither sees the other's review before both have written
//! one or the window closes.
//!
//! ```text
//! completed ──buyer writes──▶ hidden ─┐
//!     │                               ├─ both written, or the window closes ──▶ published
//!     └──seller writes──▶ hidden ─────┘        (the seller may then reply once to the buyer's)
//! ```
//!
//! A hidden review is stored with `published_at` unset; publishing sets it,
//! for both reviews of an order in the same write when the second arrives.
//! Ratings ([`RatingSummary`]) count published reviews only.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{GigId, OrderId, UserId};
use crate::order::{Order, OrderStatus, Side};
use crate::validation::{text, FieldError, ValidationErrors};

/// The timings reviews follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReviewPolicy {
    /// Reviews may be written for this long after the order completed.
    pub window: TimeDelta,
    /// A side that has not reviewed is reminded this long before the
    /// window closes.
    pub remind_before: TimeDelta,
}

impl Default for ReviewPolicy {
    fn default() -> Self {
        Self {
            window: TimeDelta::days(14),
            remind_before: TimeDelta::days(2),
        }
    }
}

impl ReviewPolicy {
    /// When the window of a completed order closes.
    pub fn closes_at(&self, order: &Order) -> Option<DateTime<Utc>> {
        (order.status == OrderStatus::Completed)
            .then_some(order.completed_at?)
            .map(|at| at + self.window)
    }
}

/// One to five stars.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Stars(u8);

impl Stars {
    pub fn new(value: i64) -> Option<Self> {
        u8::try_from(value)
            .ok()
            .filter(|v| (1..=5).contains(v))
            .map(Self)
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Stars {
    type Error = String;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        Stars::new(i64::from(value)).ok_or_else(|| format!("{value} is not 1 to 5 stars"))
    }
}

impl From<Stars> for u8 {
    fn from(stars: Stars) -> u8 {
        stars.0
    }
}

/// What an author submits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewDraft {
    pub rating: Stars,
    pub text: String,
}

impl ReviewDraft {
    pub const MAX_TEXT: usize = 2000;

    /// Checks the stars (1 to 5) and the text (may be empty, at most
    /// [`Self::MAX_TEXT`] characters).
    pub fn parse(rating: i64, text_raw: &str) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let rating = Stars::new(rating);
        if rating.is_none() {
            errors.push(FieldError::new(
                "rating",
                "invalid",
                "must be a whole number of stars from 1 to 5",
            ));
        }
        let text = errors.check(text("text", text_raw, 0, Self::MAX_TEXT));
        errors.finish(|| {
            Some(Self {
                rating: rating?,
                text: text?,
            })
        })
    }
}

/// The seller's one public answer to the buyer's review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewReply {
    pub text: String,
    pub created_at: DateTime<Utc>,
}

impl ReviewReply {
    pub const MAX_TEXT: usize = 1000;

    pub fn parse(raw: &str, now: DateTime<Utc>) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let text = errors.check(text("text", raw, 1, Self::MAX_TEXT));
        errors.finish(|| {
            Some(Self {
                text: text?,
                created_at: now,
            })
        })
    }
}

/// One side's review of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub order_id: OrderId,
    /// The side that wrote it: the buyer reviews the seller (and the gig),
    /// the seller reviews the buyer.
    pub side: Side,
    pub author_id: UserId,
    /// Who the review is about.
    pub subject_id: UserId,
    /// The gig bought, on the buyer's review of a gig order.
    pub gig_id: Option<GigId>,
    pub rating: Stars,
    pub text: String,
    pub created_at: DateTime<Utc>,
    /// The end of the order's review window.
    pub window_closes_at: DateTime<Utc>,
    /// Set when the review became visible to everyone.
    pub published_at: Option<DateTime<Utc>>,
    /// The seller's reply, on a published review by the buyer.
    pub reply: Option<ReviewReply>,
}

impl Review {
    pub fn is_published(&self) -> bool {
        self.published_at.is_some()
    }

    /// Whether `viewer` may read it: everyone once published; before that,
    /// only its author.
    pub fn visible_to(&self, viewer: Option<UserId>) -> bool {
        self.is_published() || viewer == Some(self.author_id)
    }

    /// What the review counts towards, once published.
    pub fn subjects(&self) -> Vec<RatingSubject> {
        match self.side {
            Side::Buyer => {
                let mut subjects = vec![RatingSubject::Seller(self.subject_id)];
                subjects.extend(self.gig_id.map(RatingSubject::Gig));
                subjects
            }
            Side::Seller => vec![RatingSubject::Buyer(self.subject_id)],
        }
    }
}

/// Why a review or a reply is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    #[error("only the order's buyer and seller review it")]
    NotAParty,
    #[error("an order is reviewed once it is completed")]
    NotCompleted,
    #[error("the review window of this order has closed")]
    WindowClosed,
    #[error("this side has already reviewed the order")]
    AlreadyReviewed,
    #[error("only the seller replies, to the buyer's published review")]
    NotYours,
    #[error("the review is not published yet")]
    NotPublished,
    #[error("the review already has a reply")]
    AlreadyReplied,
}

/// The review `author` writes of `order` at `now`, if they may.
pub fn write(
    order: &Order,
    author: UserId,
    draft: ReviewDraft,
    policy: &ReviewPolicy,
    now: DateTime<Utc>,
) -> Result<Review, ReviewError> {
    let (side, subject_id) = if author == order.buyer_id {
        (Side::Buyer, order.seller_id)
    } else if author == order.seller_id {
        (Side::Seller, order.buyer_id)
    } else {
        return Err(ReviewError::NotAParty);
    };
    let window_closes_at = policy.closes_at(order).ok_or(ReviewError::NotCompleted)?;
    if now >= window_closes_at {
        return Err(ReviewError::WindowClosed);
    }
    Ok(Review {
        order_id: order.id,
        side,
        author_id: author,
        subject_id,
        gig_id: match side {
            Side::Buyer => order.terms.gig_id,
            Side::Seller => None,
        },
        rating: draft.rating,
        text: draft.text,
        created_at: now,
        window_closes_at,
        published_at: None,
        reply: None,
    })
}

/// Checks that `by` may reply to `review`.
pub fn check_reply(review: &Review, by: UserId) -> Result<(), ReviewError> {
    if review.side != Side::Buyer || review.subject_id != by {
        return Err(ReviewError::NotYours);
    }
    if !review.is_published() {
        return Err(ReviewError::NotPublished);
    }
    if review.reply.is_some() {
        return Err(ReviewError::AlreadyReplied);
    }
    Ok(())
}

/// What a rating is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum RatingSubject {
    /// The buyers' reviews of a gig.
    Gig(GigId),
    /// The buyers' reviews of a seller, over all their orders.
    Seller(UserId),
    /// The sellers' reviews of a buyer.
    Buyer(UserId),
}

/// Average, count and histogram of published reviews.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatingSummary {
    pub count: u32,
    /// How many reviews gave 1, 2, 3, 4 and 5 stars.
    pub histogram: [u32; 5],
}

impl RatingSummary {
    pub fn from_histogram(histogram: [u32; 5]) -> Self {
        Self {
            count: histogram.iter().sum(),
            histogram,
        }
    }

    pub fn add(&mut self, stars: Stars) {
        self.histogram[usize::from(stars.get() - 1)] += 1;
        self.count += 1;
    }

    /// The mean, 0 when there are no reviews.
    pub fn average(&self) -> f32 {
        if self.count == 0 {
            return 0.0;
        }
        let total: u64 = self
            .histogram
            .iter()
            .zip(1u64..)
            .map(|(n, stars)| u64::from(*n) * stars)
            .sum();
        (total as f64 / f64::from(self.count)) as f32
    }

    /// The mean rounded to one decimal, as shown.
    pub fn shown_average(&self) -> f32 {
        (self.average() * 10.0).round() / 10.0
    }
}

impl FromIterator<Stars> for RatingSummary {
    fn from_iter<I: IntoIterator<Item = Stars>>(iter: I) -> Self {
        let mut summary = Self::default();
        for stars in iter {
            summary.add(stars);
        }
        summary
    }
}

/// A position in a list of published reviews, newest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewCursor {
    pub published_at: DateTime<Utc>,
    pub order_id: OrderId,
}

impl ReviewCursor {
    pub fn of(review: &Review) -> Option<Self> {
        Some(Self {
            published_at: review.published_at?,
            order_id: review.order_id,
        })
    }

    /// `<published_at micros>.<order id>`, opaque to clients.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.published_at.timestamp_micros(), self.order_id)
    }

    pub fn decode(raw: &str) -> Option<Self> {
        let (micros, order) = raw.split_once('.')?;
        Some(Self {
            published_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            order_id: order.parse().ok()?,
        })
    }
}

/// A seller's track record, from which their level follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SellerRecord {
    pub completed_orders: u32,
    /// Completed orders first delivered by their due date.
    pub on_time_orders: u32,
    /// Their rating as a seller.
    pub rating: RatingSummary,
    /// Median time to answer a buyer's first message in a conversation, in
    /// seconds; `None` before any buyer wrote.
    pub response_secs: Option<u32>,
    /// Days since the seller profile was created.
    pub seller_days: u32,
}

impl SellerRecord {
    /// The share of completed orders delivered on time, 1 with none.
    pub fn on_time_rate(&self) -> f32 {
        if self.completed_orders == 0 {
            1.0
        } else {
            self.on_time_orders as f32 / self.completed_orders as f32
        }
    }
}

/// A seller's standing, shown on profiles and gigs and filtered on in
/// search.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SellerLevel {
    New,
    #[serde(rename = "level_1")]
    Level1,
    #[serde(rename = "level_2")]
    Level2,
    TopRated,
}

/// What one level asks of a seller.
struct LevelBar {
    level: SellerLevel,
    completed_orders: u32,
    min_rating: f32,
    min_reviews: u32,
    on_time_rate: f32,
    /// Median first answer within this many seconds.
    response_secs: u32,
    seller_days: u32,
}

/// Highest first: a seller gets the first level whose every bar they meet.
const BARS: [LevelBar; 3] = [
    LevelBar {
        level: SellerLevel::TopRated,
        completed_orders: 50,
        min_rating: 4.7,
        min_reviews: 20,
        on_time_rate: 0.95,
        response_secs: 3 * 3600,
        seller_days: 120,
    },
    LevelBar {
        level: SellerLevel::Level2,
        completed_orders: 20,
        min_rating: 4.5,
        min_reviews: 10,
        on_time_rate: 0.90,
        response_secs: 12 * 3600,
        seller_days: 60,
    },
    LevelBar {
        level: SellerLevel::Level1,
        completed_orders: 5,
        min_rating: 4.3,
        min_reviews: 3,
        on_time_rate: 0.85,
        response_secs: 24 * 3600,
        seller_days: 30,
    },
];

impl SellerLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            SellerLevel::New => "new",
            SellerLevel::Level1 => "level_1",
            SellerLevel::Level2 => "level_2",
            SellerLevel::TopRated => "top_rated",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            SellerLevel::New,
            SellerLevel::Level1,
            SellerLevel::Level2,
            SellerLevel::TopRated,
        ]
        .into_iter()
        .find(|level| level.as_str() == s)
    }

    /// The level a record earns. A seller with no buyer messages yet is
    /// not held back by response time.
    pub fn of(record: &SellerRecord) -> SellerLevel {
        BARS.iter()
            .find(|bar| {
                record.completed_orders >= bar.completed_orders
                    && record.rating.count >= bar.min_reviews
                    && record.rating.average() >= bar.min_rating
                    && record.on_time_rate() >= bar.on_time_rate
                    && record.response_secs.is_none_or(|s| s <= bar.response_secs)
                    && record.seller_days >= bar.seller_days
            })
            .map_or(SellerLevel::New, |bar| bar.level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::{Currency, Money};
    use crate::order::OrderTerms;

    fn completed(at: DateTime<Utc>) -> Order {
        let mut order = crate::order::place(
            UserId::new(),
            UserId::new(),
            None,
            OrderTerms {
                title: "Logo".into(),
                description: String::new(),
                gig_id: Some(GigId::new()),
                package: None,
                offer_id: None,
                delivery_days: 3,
                revisions: 1,
            },
            Money {
                amount_minor: 5000,
                currency: Currency::Usd,
            },
            at,
        );
        order.status = OrderStatus::Completed;
        order.completed_at = Some(at);
        order
    }

    fn draft(stars: i64) -> ReviewDraft {
        ReviewDraft::parse(stars, "Great").unwrap()
    }

    #[test]
    fn each_party_reviews_the_other_within_the_window() {
        let now = Utc::now();
        let order = completed(now);
        let policy = ReviewPolicy::default();
        let buyer = write(&order, order.buyer_id, draft(5), &policy, now).unwrap();
        assert_eq!(buyer.side, Side::Buyer);
        assert_eq!(buyer.subject_id, order.seller_id);
        assert_eq!(buyer.gig_id, order.terms.gig_id);
        assert_eq!(buyer.window_closes_at, now + policy.window);
        let seller = write(&order, order.seller_id, draft(4), &policy, now).unwrap();
        assert_eq!(seller.subject_id, order.buyer_id);
        assert_eq!(seller.gig_id, None);
        assert_eq!(
            seller.subjects(),
            vec![RatingSubject::Buyer(order.buyer_id)]
        );

        let late = now + policy.window;
        assert_eq!(
            write(&order, order.buyer_id, draft(5), &policy, late),
            Err(ReviewError::WindowClosed)
        );
        assert_eq!(
            write(&order, UserId::new(), draft(5), &policy, now),
            Err(ReviewError::NotAParty)
        );
        let mut open = order.clone();
        open.status = OrderStatus::Delivered;
        assert_eq!(
            write(&open, open.buyer_id, draft(5), &policy, now),
            Err(ReviewError::NotCompleted)
        );
    }

    #[test]
    fn drafts_are_checked() {
        assert!(ReviewDraft::parse(0, "").is_err());
        assert!(ReviewDraft::parse(6, "").is_err());
        assert!(ReviewDraft::parse(-1, "").is_err());
        assert!(ReviewDraft::parse(3, &"x".repeat(2001)).is_err());
        assert_eq!(ReviewDraft::parse(3, "  ok ").unwrap().text, "ok");
        assert!(ReviewReply::parse(" ", Utc::now()).is_err());
        assert!(serde_json::from_str::<Stars>("6").is_err());
        assert_eq!(serde_json::from_str::<Stars>("2").unwrap().get(), 2);
    }

    #[test]
    fn only_the_seller_replies_once_to_a_published_buyer_review() {
        let now = Utc::now();
        let order = completed(now);
        let policy = ReviewPolicy::default();
        let mut review = write(&order, order.buyer_id, draft(2), &policy, now).unwrap();
        assert_eq!(
            check_reply(&review, order.seller_id),
            Err(ReviewError::NotPublished)
        );
        assert!(!review.visible_to(Some(order.seller_id)));
        assert!(review.visible_to(Some(order.buyer_id)));
        review.published_at = Some(now);
        assert!(review.visible_to(None));
        assert_eq!(
            check_reply(&review, order.buyer_id),
            Err(ReviewError::NotYours)
        );
        assert_eq!(check_reply(&review, order.seller_id), Ok(()));
        review.reply = Some(ReviewReply::parse("Thanks", now).unwrap());
        assert_eq!(
            check_reply(&review, order.seller_id),
            Err(ReviewError::AlreadyReplied)
        );
        let seller_review = write(&order, order.seller_id, draft(5), &policy, now).unwrap();
        assert_eq!(
            check_reply(&seller_review, order.buyer_id),
            Err(ReviewError::NotYours)
        );
    }

    #[test]
    fn summaries_and_cursors() {
        let summary: RatingSummary = [5, 4, 4, 1]
            .into_iter()
            .map(|n| Stars::new(n).unwrap())
            .collect();
        assert_eq!(summary.count, 4);
        assert_eq!(summary.histogram, [1, 0, 0, 2, 1]);
        assert_eq!(summary.average(), 3.5);
        assert_eq!(RatingSummary::default().average(), 0.0);
        let cursor = ReviewCursor {
            published_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            order_id: OrderId::new(),
        };
        assert_eq!(ReviewCursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(ReviewCursor::decode("x.y"), None);
        assert_eq!(ReviewCursor::decode(""), None);
    }

    #[test]
    fn levels_follow_the_record() {
        let mut record = SellerRecord::default();
        assert_eq!(SellerLevel::of(&record), SellerLevel::New);
        record = SellerRecord {
            completed_orders: 6,
            on_time_orders: 6,
            rating: RatingSummary::from_histogram([0, 0, 0, 1, 3]),
            response_secs: Some(3600),
            seller_days: 40,
        };
        assert_eq!(SellerLevel::of(&record), SellerLevel::Level1);
        record.response_secs = Some(2 * 86_400);
        assert_eq!(SellerLevel::of(&record), SellerLevel::New);
        record = SellerRecord {
            completed_orders: 60,
            on_time_orders: 58,
            rating: RatingSummary::from_histogram([0, 0, 0, 2, 28]),
            response_secs: None,
            seller_days: 200,
        };
        assert_eq!(SellerLevel::of(&record), SellerLevel::TopRated);
        record.on_time_orders = 54;
        assert_eq!(SellerLevel::of(&record), SellerLevel::Level2);
        record.on_time_orders = 50;
        assert_eq!(SellerLevel::of(&record), SellerLevel::New);
        for level in [SellerLevel::New, SellerLevel::TopRated] {
            assert_eq!(SellerLevel::parse(level.as_str()), Some(level));
        }
    }
}
