//! `ReviewStore` in DynamoDB: reviews of completed orders, hidden until both
//! sides have written theirs or the window closes, in one table of their
//! own.
//!
//! # Table layout
//!
//! One table, partition key `pk` and sort key `sk` (both strings), billed
//! per request, with two sparse global secondary indexes, `gsi1` (`gsi1pk`,
//! `gsi1sk`) and `gsi2` (`gsi2pk`, `gsi2sk`), both projecting every
//! attribute:
//!
//! | item | `pk` | `sk` | attributes |
//! |---|---|---|---|
//! | review | `ORDER#<order id>` | `REVIEW#buyer` or `REVIEW#seller` | `order_id`, `side`, `author_id`, `subject_id`, `gig_id` (buyer's review of a gig order), `rating` (1 to 5), `text`, `created_at`, `window_closes_at`, `published_at` (absent while hidden), `reply_text` and `reply_created_at` (absent until the seller replies), and the index keys below |
//! | rating | `RATING#<subject>` | `RATING` | `stars_1` ... `stars_5`: how many published reviews gave that many stars |
//!
//! A subject is `SELLER#<user id>`, `BUYER#<user id>` or `GIG#<gig id>`.
//! The index keys change when a review is published:
//!
//! | review | `gsi1pk` | `gsi1sk` | `gsi2pk` | `gsi2sk` |
//! |---|---|---|---|---|
//! | hidden | `HIDDEN` | `<window_closes_at>#<order id>#<side>` | absent | absent |
//! | published | its subject (`SELLER#...` for the buyer's, `BUYER#...` for the seller's) | `<published_at>#<order id>` | `GIG#<gig id>` on a buyer's review of a gig | as `gsi1sk` |
//!
//! So `gsi1` serves two queries: the `HIDDEN` partition is the queue of
//! hidden reviews by closing window (`publish_due`, `next_window_close`),
//! and a subject's partition lists a user's published reviews newest first;
//! `gsi2` lists a gig's. Hidden reviews appear in no list.
//!
//! Times are numbers, microseconds since the epoch, as precise as the SQL
//! store keeps them. In index sort keys they are written as 20 digits of
//! the microseconds plus 2^63, fixed-width text that sorts as the instants
//! do (before 1970 too); order ids are UUIDs, whose text sorts as their
//! bytes. Lists are therefore newest published first, then by order id
//! descending, and a [`ReviewCursor`] becomes the exclusive upper bound of
//! the sort key.
//!
//! # Writing and publishing
//!
//! Orders stay in the relational store: given an `OrderStore`
//! ([`DynamoReviewStore::with_orders`]), `submit` refuses a review of an
//! unknown order with `NotFound`, as the SQL store's foreign key does.
//!
//! `submit` puts the review only if no item has its key, so each side
//! reviews an order once (`Conflict("review")` for every other writer).
//! It then reads the order's partition (strongly consistent); when both
//! reviews are there and hidden, one `TransactWriteItems` publishes both
//! at `now`, each conditioned on being still unpublished, and adds each
//! review's stars to the rating items of its subjects. As every writer
//! puts before it reads, of two sides writing at once at least one sees
//! both; if both try, one transaction commits and the other is cancelled,
//! reads again, finds them published and returns none. The reviews are
//! returned by the one write that published them. If the clock published
//! the other side's review already, this one is left to the clock too, as
//! in the SQL store. `publish_due` publishes each due review of the
//! `HIDDEN` partition the same way (one transaction per review, with its
//! rating items), skipping any published meanwhile.
//!
//! Because the rating items change in the transaction that publishes, a
//! rating is one strongly consistent read and counts every published
//! review exactly once, however many reviews a subject has. A subject with
//! very many reviews published at the same moment contends on its rating
//! item: a cancelled transaction is retried (bounded).
//!
//! `reply` is one conditional update of the buyer's review (published, no
//! reply yet); a refused condition returns the stored item, which tells
//! `NotFound` from `Conflict("reply")` without another read.
//!
//! # Limits
//!
//! Index reads are eventually consistent on AWS: a review published a
//! moment ago may be missing from `reviews`, and `publish_due` or
//! `next_window_close` may still see one that was just published (it is
//! then skipped). Reads by order and ratings are strongly consistent. The
//! `HIDDEN` partition takes every submission and publication; splitting it
//! into a fixed number of shards, queried together and merged by sort key,
//! is the step for write rates beyond what one index partition sustains.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use domain::ids::{GigId, OrderId, UserId};
use domain::order::Side;
use domain::ports::{OrderStore, ReviewStore, StoreError};
use domain::review::{RatingSubject, RatingSummary, Review, ReviewCursor, ReviewReply, Stars};

use super::{
    backend, built, cancellation_codes, ensure_table, get_n, get_s, get_time, get_uuid, key,
    micros, n, s, sdk_error, Item,
};
use crate::aws::AwsConnection;

/// Hidden reviews by closing window, and published ones by seller or buyer.
const BY_SUBJECT: &str = "gsi1";
/// Published buyer reviews by gig.
const BY_GIG: &str = "gsi2";
/// The `gsi1` partition of hidden reviews.
const HIDDEN: &str = "HIDDEN";
const RATING_SK: &str = "RATING";
/// How often a publication is tried again after a concurrent transaction
/// cancelled it.
const PUBLISH_ATTEMPTS: u32 = 8;

/// Reviews in one DynamoDB table (see the module documentation).
#[derive(Clone)]
pub struct DynamoReviewStore {
    client: Client,
    table: String,
    /// When set, a review of an order that does not exist is refused with
    /// `NotFound`, as the SQL store's foreign key does.
    orders: Option<Arc<dyn OrderStore>>,
}

impl fmt::Debug for DynamoReviewStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoReviewStore")
            .field("table", &self.table)
            .field("checks_orders", &self.orders.is_some())
            .finish_non_exhaustive()
    }
}

fn order_pk(order: OrderId) -> String {
    format!("ORDER#{order}")
}

fn review_sk(side: Side) -> String {
    format!("REVIEW#{}", side.as_str())
}

fn subject_key(subject: RatingSubject) -> String {
    match subject {
        RatingSubject::Seller(id) => format!("SELLER#{id}"),
        RatingSubject::Buyer(id) => format!("BUYER#{id}"),
        RatingSubject::Gig(id) => format!("GIG#{id}"),
    }
}

/// The index listing a subject's published reviews.
fn index_of(subject: RatingSubject) -> &'static str {
    match subject {
        RatingSubject::Gig(_) => BY_GIG,
        RatingSubject::Seller(_) | RatingSubject::Buyer(_) => BY_SUBJECT,
    }
}

fn rating_pk(subject: RatingSubject) -> String {
    format!("RATING#{}", subject_key(subject))
}

/// Fixed-width text that sorts as the microseconds do: shifted by 2^63
/// onto the unsigned range, 20 digits.
fn sortable(micros: i64) -> String {
    format!("{:020}", micros.abs_diff(i64::MIN))
}

fn listed_sk(published_us: i64, order: OrderId) -> String {
    format!("{}#{order}", sortable(published_us))
}

fn hidden_sk(closes_us: i64, order: OrderId, side: Side) -> String {
    format!("{}#{order}#{}", sortable(closes_us), side.as_str())
}

/// An instant as stored: whole microseconds.
fn stored_time(us: i64, what: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| backend(what, "time out of range"))
}

/// The hidden item of a new review.
fn review_item(review: &Review) -> Item {
    let closes_us = micros(review.window_closes_at);
    let mut item: Item = [
        ("pk", s(order_pk(review.order_id))),
        ("sk", s(review_sk(review.side))),
        ("order_id", s(review.order_id.to_string())),
        ("side", s(review.side.as_str())),
        ("author_id", s(review.author_id.to_string())),
        ("subject_id", s(review.subject_id.to_string())),
        ("rating", n(i64::from(review.rating.get()))),
        ("text", s(&review.text)),
        ("created_at", n(micros(review.created_at))),
        ("window_closes_at", n(closes_us)),
        ("gsi1pk", s(HIDDEN)),
        (
            "gsi1sk",
            s(hidden_sk(closes_us, review.order_id, review.side)),
        ),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect();
    if let Some(gig) = review.gig_id {
        item.insert("gig_id".to_string(), s(gig.to_string()));
    }
    item
}

fn get_opt_time(item: &Item, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    if item.contains_key(name) {
        get_time(item, name).map(Some)
    } else {
        Ok(None)
    }
}

fn review_from(item: &Item) -> Result<Review, StoreError> {
    let what = "reading a stored review";
    let side = get_s(item, "side")?;
    let side = Side::parse(side).ok_or_else(|| backend(what, format!("unknown side {side:?}")))?;
    let rating = get_n(item, "rating")?;
    let rating =
        Stars::new(rating).ok_or_else(|| backend(what, format!("{rating} is not 1 to 5 stars")))?;
    let gig_id = if item.contains_key("gig_id") {
        Some(GigId::from_uuid(get_uuid(item, "gig_id")?))
    } else {
        None
    };
    let reply = if item.contains_key("reply_text") {
        Some(ReviewReply {
            text: get_s(item, "reply_text")?.to_string(),
            created_at: get_time(item, "reply_created_at")?,
        })
    } else {
        None
    };
    Ok(Review {
        order_id: OrderId::from_uuid(get_uuid(item, "order_id")?),
        side,
        author_id: UserId::from_uuid(get_uuid(item, "author_id")?),
        subject_id: UserId::from_uuid(get_uuid(item, "subject_id")?),
        gig_id,
        rating,
        text: get_s(item, "text")?.to_string(),
        created_at: get_time(item, "created_at")?,
        window_closes_at: get_time(item, "window_closes_at")?,
        published_at: get_opt_time(item, "published_at")?,
        reply,
    })
}

fn summary_from(item: &Item) -> Result<RatingSummary, StoreError> {
    let mut histogram = [0u32; 5];
    for (stars, count) in (1..).zip(histogram.iter_mut()) {
        let name = format!("stars_{stars}");
        if item.contains_key(&name) {
            let stored = get_n(item, &name)?;
            *count = u32::try_from(stored)
                .map_err(|_| backend("reading a rating", format!("{name} is {stored}")))?;
        }
    }
    Ok(RatingSummary::from_histogram(histogram))
}

/// What one attempt at publishing came to.
enum Publication {
    Published(Vec<Review>),
    /// A review was published by another writer meanwhile.
    Lost,
    /// Another transaction on the same items got in the way; try again.
    Contended,
}

impl DynamoReviewStore {
    /// Builds the client. Nothing is sent yet: call [`Self::ensure_table`]
    /// at start to create the table or find a wrong setting.
    pub async fn new(connection: &AwsConnection, table: &str) -> Result<Self, StoreError> {
        Ok(Self {
            client: super::client(connection, table).await?,
            table: table.to_string(),
            orders: None,
        })
    }

    /// Refuses reviews of orders `orders` does not know (`NotFound`), as
    /// the relational store's foreign key does.
    pub fn with_orders(mut self, orders: Arc<dyn OrderStore>) -> Self {
        self.orders = Some(orders);
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table and its two indexes unless the table exists, then
    /// waits (bounded) until all are active.
    pub async fn ensure_table(&self) -> Result<(), StoreError> {
        ensure_table(
            &self.client,
            &self.table,
            "reviews table",
            &[BY_SUBJECT, BY_GIG],
        )
        .await
    }

    /// Both reviews of an order, the buyer's first (strongly consistent).
    async fn order_reviews(&self, order: OrderId) -> Result<Vec<Review>, StoreError> {
        let what = "reading an order's reviews";
        let mut reviews = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :order AND begins_with(sk, :review)")
                .expression_attribute_values(":order", s(order_pk(order)))
                .expression_attribute_values(":review", s("REVIEW#"))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error(what, e))?;
            for item in page.items() {
                reviews.push(review_from(item)?);
            }
            match page.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => return Ok(reviews),
            }
        }
    }

    /// The writes that publish `review` at `now_us`: the review itself
    /// (only if still hidden), moved from the hidden queue to its subjects'
    /// lists, and its stars added to its subjects' ratings.
    fn publication(
        &self,
        review: &Review,
        now_us: i64,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let what = "publishing a review";
        let mut set = vec!["published_at = :now".to_string()];
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                order_pk(review.order_id),
                &review_sk(review.side),
            )))
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(published_at)")
            .expression_attribute_values(":now", n(now_us))
            .expression_attribute_values(":listed", s(listed_sk(now_us, review.order_id)));
        let mut counters = Vec::new();
        for subject in review.subjects() {
            let index = index_of(subject);
            set.push(format!("{index}pk = :{index}, {index}sk = :listed"));
            update =
                update.expression_attribute_values(format!(":{index}"), s(subject_key(subject)));
            let counter = built(
                what,
                Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(rating_pk(subject), RATING_SK)))
                    .update_expression(format!("ADD stars_{} :one", review.rating.get()))
                    .expression_attribute_values(":one", n(1))
                    .build(),
            )?;
            counters.push(TransactWriteItem::builder().update(counter).build());
        }
        let update = built(
            what,
            update
                .update_expression(format!("SET {}", set.join(", ")))
                .build(),
        )?;
        let mut writes = vec![TransactWriteItem::builder().update(update).build()];
        writes.extend(counters);
        Ok(writes)
    }

    /// One attempt at publishing `reviews` at `now` in one transaction.
    async fn publish(
        &self,
        reviews: &[Review],
        now: DateTime<Utc>,
    ) -> Result<Publication, StoreError> {
        let what = "publishing reviews";
        let now_us = micros(now);
        let mut writes = Vec::new();
        for review in reviews {
            writes.extend(self.publication(review, now_us)?);
        }
        let written = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await;
        match written {
            Ok(_) => {
                let published_at = stored_time(now_us, what)?;
                Ok(Publication::Published(
                    reviews
                        .iter()
                        .map(|review| Review {
                            published_at: Some(published_at),
                            ..review.clone()
                        })
                        .collect(),
                ))
            }
            Err(e) => match cancellation_codes(&e) {
                Some(codes) if codes.iter().any(|code| code == "ConditionalCheckFailed") => {
                    Ok(Publication::Lost)
                }
                Some(codes) => {
                    tracing::debug!(?codes, "publication cancelled, trying again");
                    Ok(Publication::Contended)
                }
                None => Err(sdk_error(what, e)),
            },
        }
    }

    /// Publishes the order's two reviews at `now` if both are stored and
    /// hidden; the reviews this published. One the clock published already
    /// leaves the other to the clock too, as in the SQL store.
    async fn publish_pair(
        &self,
        order: OrderId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Review>, StoreError> {
        for attempt in 0..PUBLISH_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
            }
            let stored = self.order_reviews(order).await?;
            if stored.len() < 2 || stored.iter().any(Review::is_published) {
                return Ok(Vec::new());
            }
            match self.publish(&stored, now).await? {
                Publication::Published(reviews) => return Ok(reviews),
                // Read again: published by the other writer, or contended.
                Publication::Lost | Publication::Contended => {}
            }
        }
        Err(backend(
            "publishing reviews",
            format!("still contended after {PUBLISH_ATTEMPTS} attempts"),
        ))
    }

    /// Hidden reviews from the queue, earliest closing window first, up to
    /// `limit`, whose sort key is below `before` if given.
    async fn hidden(&self, before: Option<String>, limit: u32) -> Result<Vec<Review>, StoreError> {
        let mut values = HashMap::from([(":partition".to_string(), s(HIDDEN))]);
        let condition = match before {
            Some(bound) => {
                values.insert(":before".to_string(), s(bound));
                "gsi1pk = :partition AND gsi1sk < :before"
            }
            None => "gsi1pk = :partition",
        };
        self.query_index(BY_SUBJECT, condition, values, true, limit)
            .await
    }

    /// Up to `limit` reviews from one partition of `index`, in the order
    /// of its sort key (`forward`) or the reverse.
    async fn query_index(
        &self,
        index: &str,
        condition: &str,
        values: Item,
        forward: bool,
        limit: u32,
    ) -> Result<Vec<Review>, StoreError> {
        let what = "reading reviews by index";
        let mut reviews = Vec::new();
        let mut start: Option<Item> = None;
        while reviews.len() < limit as usize {
            let remaining = i32::try_from(limit as usize - reviews.len()).unwrap_or(i32::MAX);
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression(condition)
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(forward)
                .limit(remaining)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error(what, e))?;
            for item in page.items() {
                reviews.push(review_from(item)?);
            }
            match page.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => break,
            }
        }
        Ok(reviews)
    }
}

#[async_trait]
impl ReviewStore for DynamoReviewStore {
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(order_id = %review.order_id, side = review.side.as_str()),
        err(level = "debug")
    )]
    async fn submit(&self, review: &Review, now: DateTime<Utc>) -> Result<Vec<Review>, StoreError> {
        if let Some(orders) = &self.orders {
            if orders.order(review.order_id).await?.is_none() {
                return Err(StoreError::NotFound);
            }
        }
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(review_item(review)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => {}
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                return Err(StoreError::Conflict("review"));
            }
            Err(e) => return Err(sdk_error("storing a review", e)),
        }
        self.publish_pair(review.order_id, now).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(order_id = %order), err(level = "debug"))]
    async fn reviews_of_order(&self, order: OrderId) -> Result<Vec<Review>, StoreError> {
        self.order_reviews(order).await
    }

    #[tracing::instrument(level = "debug", skip_all, err)]
    async fn publish_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Review>, StoreError> {
        // Closing at or before `now`: before the next microsecond.
        let bound = sortable(micros(now).saturating_add(1));
        let mut published = Vec::new();
        for review in self.hidden(Some(bound), limit).await? {
            let mut attempt = 0;
            loop {
                match self.publish(std::slice::from_ref(&review), now).await? {
                    Publication::Published(reviews) => published.extend(reviews),
                    // Published meanwhile, by its pair or another run.
                    Publication::Lost => {}
                    Publication::Contended if attempt + 1 < PUBLISH_ATTEMPTS => {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
                        continue;
                    }
                    Publication::Contended => {
                        // Still hidden and due: the next run takes it.
                        tracing::warn!(
                            order_id = %review.order_id,
                            side = review.side.as_str(),
                            "due review still contended, left for the next run"
                        );
                    }
                }
                break;
            }
        }
        Ok(published)
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn next_window_close(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self
            .hidden(None, 1)
            .await?
            .first()
            .map(|review| review.window_closes_at))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(order_id = %order), err(level = "debug"))]
    async fn reply(&self, order: OrderId, reply: &ReviewReply) -> Result<Review, StoreError> {
        let what = "replying to a review";
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(order_pk(order), &review_sk(Side::Buyer))))
            .update_expression("SET reply_text = :text, reply_created_at = :at")
            .condition_expression(
                "attribute_exists(published_at) AND attribute_not_exists(reply_text)",
            )
            .expression_attribute_values(":text", s(&reply.text))
            .expression_attribute_values(":at", n(micros(reply.created_at)))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match updated {
            Ok(output) => match output.attributes {
                Some(item) => review_from(&item),
                None => Err(backend(what, "no attributes returned")),
            },
            Err(SdkError::ServiceError(e)) => match e.err() {
                UpdateItemError::ConditionalCheckFailedException(failed) => {
                    match failed.item() {
                        // Published, so the condition failed on the reply.
                        Some(stored) if stored.contains_key("published_at") => {
                            Err(StoreError::Conflict("reply"))
                        }
                        _ => Err(StoreError::NotFound),
                    }
                }
                _ => Err(sdk_error(what, SdkError::ServiceError(e))),
            },
            Err(e) => Err(sdk_error(what, e)),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(subject = ?subject), err(level = "debug"))]
    async fn reviews(
        &self,
        subject: RatingSubject,
        before: Option<ReviewCursor>,
        limit: u32,
    ) -> Result<Vec<Review>, StoreError> {
        let index = index_of(subject);
        let mut values = HashMap::from([(":partition".to_string(), s(subject_key(subject)))]);
        let condition = match before {
            Some(cursor) => {
                values.insert(
                    ":before".to_string(),
                    s(listed_sk(micros(cursor.published_at), cursor.order_id)),
                );
                format!("{index}pk = :partition AND {index}sk < :before")
            }
            None => format!("{index}pk = :partition"),
        };
        self.query_index(index, &condition, values, false, limit)
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(subject = ?subject), err(level = "debug"))]
    async fn rating(&self, subject: RatingSubject) -> Result<RatingSummary, StoreError> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(rating_pk(subject), RATING_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("reading a rating", e))?;
        got.item
            .as_ref()
            .map_or(Ok(RatingSummary::default()), summary_from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_times_sort_as_the_instants() {
        let times = [
            i64::MIN,
            -1_000_001,
            -1,
            0,
            1,
            1_700_000_000_123_456,
            i64::MAX,
        ];
        let keys: Vec<String> = times.iter().map(|t| sortable(*t)).collect();
        assert!(keys.iter().all(|k| k.len() == 20));
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }
}
