//! Review scenarios, written against the `ReviewStore` port so every
//! backend passes the same ones: SQLite (`store::reviews::sqlite::*`),
//! PostgreSQL (`store::reviews::postgres::*`) and DynamoDB
//! (`store::reviews::dynamodb::*`, on `moto_server`). Reviews are double-blind
//! until both sides wrote or the window closes, one per side even under
//! concurrent submissions, published exactly once, replied to once, listed
//! newest published first in pages without repeats or gaps, and rated over
//! published reviews only.
//!
//! Users and completed orders live in SQL whatever the review backend
//! (reviews refer to orders); orders are completed through the domain's own
//! rules and reviews written with `review::write`.

use std::collections::HashSet;
use std::sync::Arc;

use adapters::sql::SqlStore;
use anyhow::{bail, ensure, Context};
use chrono::{DateTime, TimeDelta, Utc};
use domain::ids::{GigId, OrderId, UserId};
use domain::order::{Actor, Order, OrderCommand, OrderStatus, Side};
use domain::ports::{OrderStore, ReviewStore, StoreError};
use domain::review::{
    self, RatingSubject, RatingSummary, Review, ReviewCursor, ReviewDraft, ReviewPolicy,
    ReviewReply,
};
use tokio::sync::Barrier;

use super::orders::{apply, gig_order, pay, place};
use super::{create, is_conflict, is_not_found, secs, t0, Result};

/// Each scenario once per backend. Another backend is one more module here
/// whose tests build the fixture with `ReviewFixture::new` from the SQL
/// store holding the orders and that backend's store.
macro_rules! reviews_suite {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::super::harness::run_sqlite(|store| {
                        super::$scenario(super::ReviewFixture::sql(store))
                    })
                    .await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::super::harness::run_postgres(|store| {
                        super::$scenario(super::ReviewFixture::sql(store))
                    })
                    .await;
                }
            )*
        }

        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::super::harness::run_dynamodb_reviews(|sql, reviews| {
                        super::$scenario(super::ReviewFixture::new(
                            sql,
                            std::sync::Arc::new(reviews),
                        ))
                    })
                    .await;
                }
            )*
        }
    };
}

reviews_suite!(
    double_blind_until_both_sides_wrote,
    one_review_per_side,
    concurrent_same_side_submissions_have_one_winner,
    concurrent_sides_publish_once,
    window_close_publishes_due_reviews,
    reply_once_to_the_published_buyer_review,
    lists_page_newest_first_per_subject,
    ratings_count_published_reviews_per_subject,
);

// ---------------------------------------------------------------- fixtures

/// What a review scenario needs: the SQL store that holds users and orders,
/// and the review store under test, through its port. On SQL both are the
/// same `SqlStore`.
#[derive(Clone)]
struct ReviewFixture {
    sql: SqlStore,
    reviews: Arc<dyn ReviewStore>,
}

impl ReviewFixture {
    fn new(sql: SqlStore, reviews: Arc<dyn ReviewStore>) -> Self {
        ReviewFixture { sql, reviews }
    }

    fn sql(store: SqlStore) -> Self {
        Self::new(store.clone(), Arc::new(store))
    }
}

fn policy() -> ReviewPolicy {
    ReviewPolicy::default()
}

/// Places an order of `buyer` from `seller` (on `gig`, or without one) and
/// takes it through payment, delivery and acceptance from `start`; it
/// completes at `start + 4s`.
async fn completed_order(
    sql: &SqlStore,
    buyer: UserId,
    seller: UserId,
    gig: Option<GigId>,
    start: DateTime<Utc>,
) -> anyhow::Result<Order> {
    let mut order = gig_order(buyer, seller, 5_000, start);
    order.terms.gig_id = gig;
    place(sql, &order, &format!("key-{}", order.id)).await?;
    let placed = sql.order(order.id).await?.context("the order is placed")?;
    let paid = pay(sql, &placed, start + secs(1)).await?;
    let started = apply(
        sql,
        &paid,
        Actor::Buyer,
        OrderCommand::SubmitRequirements {
            text: "Teal and sand, please.".into(),
        },
        start + secs(2),
    )
    .await?;
    let delivered = apply(
        sql,
        &started,
        Actor::Seller,
        OrderCommand::Deliver {
            message: "Here it is.".into(),
            files: vec!["orders/logo.zip".into()],
        },
        start + secs(3),
    )
    .await?;
    let completed = apply(
        sql,
        &delivered,
        Actor::Buyer,
        OrderCommand::Accept,
        start + secs(4),
    )
    .await?;
    ensure!(
        completed.status == OrderStatus::Completed,
        "the order completed"
    );
    Ok(completed)
}

/// The review `author` writes of `order` at `now`.
fn write(
    order: &Order,
    author: UserId,
    stars: i64,
    text: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Review> {
    let draft = ReviewDraft::parse(stars, text)?;
    Ok(review::write(order, author, draft, &policy(), now)?)
}

fn published(review: &Review, at: DateTime<Utc>) -> Review {
    Review {
        published_at: Some(at),
        ..review.clone()
    }
}

/// Buyer's review first: the port does not promise an order within an
/// order's reviews.
fn by_side(mut reviews: Vec<Review>) -> Vec<Review> {
    reviews.sort_by_key(|review| review.side == Side::Seller);
    reviews
}

/// Newest published first, ties by order id, the lists' order.
fn newest_first(mut reviews: Vec<Review>) -> Vec<Review> {
    reviews.sort_by_key(|review| std::cmp::Reverse((review.published_at, review.order_id)));
    reviews
}

/// Submits both sides' reviews of `order` (the seller's second, at
/// `publish_at`), so both are published then; returns them.
async fn review_both(
    store: &dyn ReviewStore,
    order: &Order,
    stars: (i64, i64),
    publish_at: DateTime<Utc>,
) -> anyhow::Result<(Review, Review)> {
    let by_buyer = write(
        order,
        order.buyer_id,
        stars.0,
        "From the buyer",
        publish_at - secs(1),
    )?;
    ensure!(store
        .submit(&by_buyer, publish_at - secs(1))
        .await?
        .is_empty());
    let by_seller = write(
        order,
        order.seller_id,
        stars.1,
        "From the seller",
        publish_at,
    )?;
    let both = by_side(store.submit(&by_seller, publish_at).await?);
    let expected = vec![
        published(&by_buyer, publish_at),
        published(&by_seller, publish_at),
    ];
    ensure!(
        both == expected,
        "the second review publishes both: {both:?}"
    );
    Ok((expected[0].clone(), expected[1].clone()))
}

/// Every review of `subject`, read in pages of `size` from the port;
/// checks each page but the last is full.
async fn all_pages(
    store: &dyn ReviewStore,
    subject: RatingSubject,
    size: u32,
) -> anyhow::Result<Vec<Review>> {
    let mut listed: Vec<Review> = Vec::new();
    let mut cursor = None;
    for _ in 0..100 {
        let page = store.reviews(subject, cursor, size).await?;
        ensure!(page.len() <= size as usize, "a page of {} rows", page.len());
        if page.is_empty() {
            return Ok(listed);
        }
        ensure!(
            listed.len().is_multiple_of(size as usize),
            "only the last page of {subject:?} is short"
        );
        cursor = page.last().and_then(ReviewCursor::of);
        ensure!(cursor.is_some(), "listed reviews are published");
        listed.extend(page);
    }
    bail!("the pages of {subject:?} never ended")
}

fn histogram(h: [u32; 5]) -> RatingSummary {
    RatingSummary::from_histogram(h)
}

// --------------------------------------------------------------- scenarios

async fn double_blind_until_both_sides_wrote(fixture: ReviewFixture) -> Result {
    let ReviewFixture { sql, reviews } = fixture;
    let ada = create(&sql, "ada").await?.id;
    let bob = create(&sql, "bob").await?.id;
    let gig = GigId::new();
    let order = completed_order(&sql, ada, bob, Some(gig), t0()).await?;

    let t1 = t0() + secs(100);
    let by_buyer = write(&order, ada, 5, "Fast and friendly", t1)?;
    assert_eq!(reviews.submit(&by_buyer, t1).await?, vec![]);
    assert_eq!(
        reviews.reviews_of_order(order.id).await?,
        vec![by_buyer.clone()],
        "stored hidden, as written"
    );
    let everyone = [
        RatingSubject::Seller(bob),
        RatingSubject::Gig(gig),
        RatingSubject::Buyer(ada),
    ];
    for subject in everyone {
        assert_eq!(reviews.reviews(subject, None, 10).await?, vec![]);
        assert_eq!(reviews.rating(subject).await?, RatingSummary::default());
    }
    assert_eq!(
        reviews.next_window_close().await?,
        Some(by_buyer.window_closes_at)
    );
    assert_eq!(by_buyer.window_closes_at, t0() + secs(4) + policy().window);

    let t2 = t0() + secs(200);
    let by_seller = write(&order, bob, 4, "Clear requirements", t2)?;
    let both = vec![published(&by_buyer, t2), published(&by_seller, t2)];
    assert_eq!(by_side(reviews.submit(&by_seller, t2).await?), both);
    assert_eq!(by_side(reviews.reviews_of_order(order.id).await?), both);

    assert_eq!(
        reviews
            .reviews(RatingSubject::Seller(bob), None, 10)
            .await?,
        vec![both[0].clone()]
    );
    assert_eq!(
        reviews.reviews(RatingSubject::Gig(gig), None, 10).await?,
        vec![both[0].clone()]
    );
    assert_eq!(
        reviews.reviews(RatingSubject::Buyer(ada), None, 10).await?,
        vec![both[1].clone()]
    );
    for nobody in [RatingSubject::Seller(ada), RatingSubject::Buyer(bob)] {
        assert_eq!(reviews.reviews(nobody, None, 10).await?, vec![]);
        assert_eq!(reviews.rating(nobody).await?, RatingSummary::default());
    }
    assert_eq!(
        reviews.rating(RatingSubject::Seller(bob)).await?,
        histogram([0, 0, 0, 0, 1])
    );
    assert_eq!(
        reviews.rating(RatingSubject::Gig(gig)).await?,
        histogram([0, 0, 0, 0, 1])
    );
    assert_eq!(
        reviews.rating(RatingSubject::Buyer(ada)).await?,
        histogram([0, 0, 0, 1, 0])
    );

    // Nothing is hidden any more, so the clock has nothing to do.
    assert_eq!(reviews.next_window_close().await?, None);
    let after_window = by_buyer.window_closes_at + TimeDelta::days(1);
    assert_eq!(reviews.publish_due(after_window, 10).await?, vec![]);
    assert_eq!(by_side(reviews.reviews_of_order(order.id).await?), both);
    Ok(())
}

async fn one_review_per_side(fixture: ReviewFixture) -> Result {
    let ReviewFixture { sql, reviews } = fixture;
    let ada = create(&sql, "ada").await?.id;
    let bob = create(&sql, "bob").await?.id;
    let order = completed_order(&sql, ada, bob, Some(GigId::new()), t0()).await?;

    let t1 = t0() + secs(100);
    let first = write(&order, ada, 5, "First thoughts", t1)?;
    reviews.submit(&first, t1).await?;
    let again = write(&order, ada, 1, "Second thoughts", t1 + secs(1))?;
    let result = reviews.submit(&again, t1 + secs(1)).await;
    ensure!(
        is_conflict(&result, "review"),
        "a second buyer review: {result:?}"
    );
    assert_eq!(
        reviews.reviews_of_order(order.id).await?,
        vec![first.clone()]
    );

    let t2 = t0() + secs(200);
    let by_seller = write(&order, bob, 3, "Fine", t2)?;
    let both = vec![published(&first, t2), published(&by_seller, t2)];
    assert_eq!(by_side(reviews.submit(&by_seller, t2).await?), both);

    // Published reviews are not replaced either, by either side.
    let t3 = t0() + secs(300);
    for (author, stars) in [(ada, 2), (bob, 1)] {
        let late = write(&order, author, stars, "Changed", t3)?;
        let result = reviews.submit(&late, t3).await;
        ensure!(
            is_conflict(&result, "review"),
            "a second review after publishing: {result:?}"
        );
    }
    assert_eq!(by_side(reviews.reviews_of_order(order.id).await?), both);
    assert_eq!(
        reviews.rating(RatingSubject::Seller(bob)).await?,
        histogram([0, 0, 0, 0, 1])
    );
    Ok(())
}

async fn concurrent_same_side_submissions_have_one_winner(fixture: ReviewFixture) -> Result {
    let ReviewFixture { sql, reviews } = fixture;
    let ada = create(&sql, "ada").await?.id;
    let bob = create(&sql, "bob").await?.id;
    let order = completed_order(&sql, ada, bob, None, t0()).await?;

    let start = Arc::new(Barrier::new(8));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let reviews = reviews.clone();
            let start = start.clone();
            let now = t0() + secs(100 + i);
            let review = write(&order, ada, 1 + i % 5, &format!("Attempt {i}"), now);
            tokio::spawn(async move {
                let review = review?;
                start.wait().await;
                let result = reviews.submit(&review, now).await;
                anyhow::Ok((review, result))
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut losers = 0;
    for task in tasks {
        let (review, result) = task.await??;
        match result {
            Ok(published) => {
                ensure!(
                    published.is_empty(),
                    "nothing to publish yet: {published:?}"
                );
                winners.push(review);
            }
            Err(StoreError::Conflict("review")) => losers += 1,
            Err(e) => bail!("a racing submission failed otherwise: {e:?}"),
        }
    }
    assert_eq!((winners.len(), losers), (1, 7));
    assert_eq!(reviews.reviews_of_order(order.id).await?, winners);
    assert_eq!(
        reviews.next_window_close().await?,
        Some(winners[0].window_closes_at)
    );
    Ok(())
}

async fn concurrent_sides_publish_once(fixture: ReviewFixture) -> Result {
    let ReviewFixture { sql, reviews } = fixture;
    let ada = create(&sql, "ada").await?.id;
    let bob = create(&sql, "bob").await?.id;
    let gig = GigId::new();

    for n in 0..10 {
        let order = completed_order(&sql, ada, bob, Some(gig), t0() + secs(10 * n)).await?;
        let now = t0() + secs(1000 + n);
        let start = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = [(ada, 5), (bob, 4)]
            .into_iter()
            .map(|(author, stars)| {
                let reviews = reviews.clone();
                let start = start.clone();
                let review = write(&order, author, stars, "At the same moment", now);
                tokio::spawn(async move {
                    let review = review?;
                    start.wait().await;
                    let result = reviews.submit(&review, now).await;
                    anyhow::Ok((review, result?))
                })
            })
            .collect();
        let mut written = Vec::new();
        let mut returned = Vec::new();
        for task in tasks {
            let (review, made_visible) = task.await??;
            written.push(published(&review, now));
            returned.push(made_visible);
        }
        let both = by_side(written);
        let pairs: Vec<&Vec<Review>> = returned.iter().filter(|r| !r.is_empty()).collect();
        ensure!(
            pairs.len() == 1,
            "order {n}: exactly one submission publishes, got {returned:?}"
        );
        assert_eq!(by_side(pairs[0].clone()), both);
        assert_eq!(by_side(reviews.reviews_of_order(order.id).await?), both);
    }

    assert_eq!(reviews.next_window_close().await?, None);
    let later = t0() + TimeDelta::days(30);
    assert_eq!(reviews.publish_due(later, 100).await?, vec![]);
    for subject in [RatingSubject::Seller(bob), RatingSubject::Gig(gig)] {
        assert_eq!(reviews.rating(subject).await?, histogram([0, 0, 0, 0, 10]));
        assert_eq!(reviews.reviews(subject, None, 100).await?.len(), 10);
    }
    assert_eq!(
        reviews.rating(RatingSubject::Buyer(ada)).await?,
        histogram([0, 0, 0, 10, 0])
    );
    Ok(())
}

async fn window_close_publishes_due_reviews(fixture: ReviewFixture) -> Result {
    let ReviewFixture { sql, reviews } = fixture;
    let ada = create(&sql, "ada").await?.id;
    let bob = create(&sql, "bob").await?.id;
    // Completed a thousand seconds apart, so their windows close in order.
    let mut orders = Vec::new();
    for n in 0..4 {
        orders.push(completed_order(&sql, ada, bob, None, t0() + secs(1000 * n)).await?);
    }
    let written = t0() + secs(5000);
    // The buyer reviews the first and third, the seller the second; the
    // fourth is reviewed by both and published at once.
    let first = write(&orders[0], ada, 5, "One", written)?;
    let second = write(&orders[1], bob, 4, "Two", written)?;
    let third = write(&orders[2], ada, 3, "Three", written)?;
    for review in [&first, &second, &third] {
        assert_eq!(reviews.submit(review, written).await?, vec![]);
    }
    let (fourth_buyer, fourth_seller) =
        review_both(&*reviews, &orders[3], (2, 1), written + secs(10)).await?;
    assert_eq!(
        reviews.next_window_close().await?,
        Some(first.window_closes_at)
    );

    // Before the first window closes, nothing is due.
    let early = first.window_closes_at - TimeDelta::microseconds(1);
    assert_eq!(reviews.publish_due(early, 10).await?, vec![]);
    assert_eq!(
        reviews.reviews_of_order(orders[0].id).await?,
        vec![first.clone()]
    );

    // Exactly at the third's close, all three are due: oldest first, up to
    // the limit.
    let now = third.window_closes_at;
    assert_eq!(
        reviews.publish_due(now, 1).await?,
        vec![published(&first, now)]
    );
    assert_eq!(
        reviews.next_window_close().await?,
        Some(second.window_closes_at)
    );
    assert_eq!(
        reviews.publish_due(now, 10).await?,
        vec![published(&second, now), published(&third, now)]
    );
    assert_eq!(reviews.publish_due(now, 10).await?, vec![]);
    assert_eq!(reviews.next_window_close().await?, None);
    for (order, review) in [
        (&orders[0], &first),
        (&orders[1], &second),
        (&orders[2], &third),
    ] {
        assert_eq!(
            reviews.reviews_of_order(order.id).await?,
            vec![published(review, now)]
        );
    }
    assert_eq!(
        by_side(reviews.reviews_of_order(orders[3].id).await?),
        vec![fourth_buyer.clone(), fourth_seller.clone()]
    );

    // Now they count.
    assert_eq!(
        reviews
            .reviews(RatingSubject::Seller(bob), None, 10)
            .await?,
        newest_first(vec![
            published(&first, now),
            published(&third, now),
            fourth_buyer
        ])
    );
    assert_eq!(
        reviews.reviews(RatingSubject::Buyer(ada), None, 10).await?,
        vec![published(&second, now), fourth_seller]
    );
    assert_eq!(
        reviews.rating(RatingSubject::Seller(bob)).await?,
        histogram([0, 1, 1, 0, 1])
    );
    assert_eq!(
        reviews.rating(RatingSubject::Buyer(ada)).await?,
        histogram([1, 0, 0, 1, 0])
    );
    Ok(())
}

async fn reply_once_to_the_published_buyer_review(fixture: ReviewFixture) -> Result {
    let ReviewFixture { sql, reviews } = fixture;
    let ada = create(&sql, "ada").await?.id;
    let bob = create(&sql, "bob").await?.id;
    // The seller-only order completes a day earlier, so its window closes
    // alone.
    let seller_only = completed_order(&sql, ada, bob, None, t0()).await?;
    let day = TimeDelta::days(1);
    let order = completed_order(&sql, ada, bob, Some(GigId::new()), t0() + day).await?;
    let raced = completed_order(&sql, ada, bob, None, t0() + day).await?;

    let t1 = t0() + day + secs(100);
    let thanks = ReviewReply::parse("Thank you, a pleasure", t1 + secs(50))?;

    // No review, then a hidden one: nothing to reply to.
    let result = reviews.reply(order.id, &thanks).await;
    ensure!(is_not_found(&result), "no review yet: {result:?}");
    let by_buyer = write(&order, ada, 2, "Late, but good", t1)?;
    reviews.submit(&by_buyer, t1).await?;
    let result = reviews.reply(order.id, &thanks).await;
    ensure!(is_not_found(&result), "a hidden review: {result:?}");
    let result = reviews.reply(OrderId::new(), &thanks).await;
    ensure!(is_not_found(&result), "an unknown order: {result:?}");

    // A published seller review cannot be replied to.
    let by_seller_only = write(&seller_only, bob, 5, "Great buyer", t1)?;
    reviews.submit(&by_seller_only, t1).await?;
    let closed = by_seller_only.window_closes_at;
    assert_eq!(
        reviews.publish_due(closed, 10).await?,
        vec![published(&by_seller_only, closed)]
    );
    let result = reviews.reply(seller_only.id, &thanks).await;
    ensure!(is_not_found(&result), "no buyer review: {result:?}");
    assert_eq!(
        reviews.reviews_of_order(seller_only.id).await?,
        vec![published(&by_seller_only, closed)]
    );

    // Once published, once.
    let t2 = t1 + secs(20);
    let (buyer_review, seller_review) = {
        let by_seller = write(&order, bob, 4, "Good buyer", t2)?;
        let both = by_side(reviews.submit(&by_seller, t2).await?);
        ensure!(both.len() == 2, "both published: {both:?}");
        (both[0].clone(), both[1].clone())
    };
    assert_eq!(buyer_review, published(&by_buyer, t2));
    let replied = Review {
        reply: Some(thanks.clone()),
        ..buyer_review.clone()
    };
    assert_eq!(reviews.reply(order.id, &thanks).await?, replied);
    let other = ReviewReply::parse("Second answer", t2 + secs(100))?;
    let result = reviews.reply(order.id, &other).await;
    ensure!(is_conflict(&result, "reply"), "a second reply: {result:?}");
    assert_eq!(
        by_side(reviews.reviews_of_order(order.id).await?),
        vec![replied.clone(), seller_review]
    );
    assert_eq!(
        reviews
            .reviews(RatingSubject::Seller(bob), None, 10)
            .await?
            .into_iter()
            .find(|review| review.order_id == order.id),
        Some(replied)
    );

    // Racing replies: one wins.
    review_both(&*reviews, &raced, (5, 5), t2).await?;
    let raced = raced.id;
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let reviews = reviews.clone();
            let reply = ReviewReply::parse(&format!("Answer {i}"), t2 + secs(200 + i));
            tokio::spawn(async move {
                let reply = reply?;
                let result = reviews.reply(raced, &reply).await;
                anyhow::Ok((reply, result))
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (reply, result) = task.await??;
        match result {
            Ok(review) => {
                ensure!(review.reply.as_ref() == Some(&reply), "the winner's reply");
                winners.push(review);
            }
            Err(StoreError::Conflict("reply")) => {}
            Err(e) => bail!("a racing reply failed otherwise: {e:?}"),
        }
    }
    ensure!(winners.len() == 1, "one reply wins: {winners:?}");
    assert_eq!(
        by_side(reviews.reviews_of_order(raced).await?).first(),
        winners.first()
    );
    Ok(())
}

async fn lists_page_newest_first_per_subject(fixture: ReviewFixture) -> Result {
    let ReviewFixture { sql, reviews } = fixture;
    let ada = create(&sql, "ada").await?.id;
    let bob = create(&sql, "bob").await?.id;
    let carol = create(&sql, "carol").await?.id;
    let (logo, site) = (GigId::new(), GigId::new());

    // Seven orders of Ada from Bob (five of the logo gig), published at
    // times with ties, so pages break inside a tie.
    let t1 = t0() + secs(1000);
    let offsets = [1, 2, 2, 2, 3, 4, 4];
    let mut orders = Vec::new();
    for (n, offset) in offsets.into_iter().enumerate() {
        let gig = if n < 5 { logo } else { site };
        let order = completed_order(&sql, ada, bob, Some(gig), t0() + secs(10 * n as i64)).await?;
        let stars = 1 + n as i64 % 5;
        review_both(
            &*reviews,
            &order,
            (stars, 5 - n as i64 % 5),
            t1 + secs(offset),
        )
        .await?;
        orders.push(order);
    }
    // One from Carol, at a tied time; one where only Ada wrote (hidden).
    let from_carol = completed_order(&sql, ada, carol, None, t0()).await?;
    review_both(&*reviews, &from_carol, (3, 3), t1 + secs(2)).await?;
    orders.push(from_carol);
    let hidden = completed_order(&sql, ada, bob, Some(logo), t0()).await?;
    reviews
        .submit(&write(&hidden, ada, 1, "Not yet visible", t1)?, t1)
        .await?;
    orders.push(hidden);

    let mut stored = Vec::new();
    for order in &orders {
        stored.extend(reviews.reviews_of_order(order.id).await?);
    }
    let expected = |subject: RatingSubject| {
        newest_first(
            stored
                .iter()
                .filter(|review| review.is_published() && review.subjects().contains(&subject))
                .cloned()
                .collect(),
        )
    };
    let cases = [
        (RatingSubject::Seller(bob), 7, 3),
        (RatingSubject::Gig(logo), 5, 2),
        (RatingSubject::Gig(site), 2, 2),
        (RatingSubject::Buyer(ada), 8, 3),
        (RatingSubject::Seller(carol), 1, 3),
        (RatingSubject::Buyer(bob), 0, 3),
        (RatingSubject::Gig(GigId::new()), 0, 3),
    ];
    for (subject, count, size) in cases {
        let want = expected(subject);
        ensure!(want.len() == count, "{subject:?}: {count} published");
        let listed = all_pages(&*reviews, subject, size).await?;
        assert_eq!(listed, want, "{subject:?} in pages of {size}");
        let distinct: HashSet<(OrderId, Side)> =
            listed.iter().map(|r| (r.order_id, r.side)).collect();
        ensure!(distinct.len() == listed.len(), "{subject:?}: no repeats");
        assert_eq!(reviews.reviews(subject, None, 100).await?, want);
    }

    // A cursor is a position, not a row: starting strictly after it works
    // whether or not a review sits exactly there.
    let all = expected(RatingSubject::Seller(bob));
    // The fifth is the middle one of three published at one time.
    ensure!(all[3].published_at == all[5].published_at, "a tie");
    let at_tie = ReviewCursor::of(&all[4]).context("published")?;
    assert_eq!(
        reviews
            .reviews(RatingSubject::Seller(bob), Some(at_tie), 100)
            .await?,
        all[5..].to_vec()
    );
    let between = ReviewCursor {
        published_at: t1 + secs(2) + TimeDelta::microseconds(500),
        order_id: OrderId::new(),
    };
    let later: Vec<Review> = all
        .iter()
        .filter(|r| r.published_at <= Some(t1 + secs(2)))
        .cloned()
        .collect();
    assert_eq!(
        reviews
            .reviews(RatingSubject::Seller(bob), Some(between), 100)
            .await?,
        later
    );
    Ok(())
}

async fn ratings_count_published_reviews_per_subject(fixture: ReviewFixture) -> Result {
    let ReviewFixture { sql, reviews } = fixture;
    let ada = create(&sql, "ada").await?.id;
    let bob = create(&sql, "bob").await?.id;
    let carol = create(&sql, "carol").await?.id;
    let (logo, site) = (GigId::new(), GigId::new());
    let publish_at = t0() + secs(1000);

    // (seller, gig, buyer's stars, seller's stars)
    let orders = [
        (bob, Some(logo), 5, 2),
        (bob, Some(logo), 4, 3),
        (bob, Some(logo), 4, 5),
        (bob, Some(logo), 1, 5),
        (bob, Some(site), 3, 4),
        (carol, None, 2, 1),
    ];
    for (n, (seller, gig, by_buyer, by_seller)) in orders.into_iter().enumerate() {
        let order = completed_order(&sql, ada, seller, gig, t0() + secs(10 * n as i64)).await?;
        review_both(&*reviews, &order, (by_buyer, by_seller), publish_at).await?;
    }
    // A hidden one-star review of the logo gig does not count yet.
    let hidden = completed_order(&sql, ada, bob, Some(logo), t0()).await?;
    let unpublished = write(&hidden, ada, 1, "Disappointing", publish_at)?;
    reviews.submit(&unpublished, publish_at).await?;

    let bob_as_seller = reviews.rating(RatingSubject::Seller(bob)).await?;
    assert_eq!(bob_as_seller, histogram([1, 0, 1, 2, 1]));
    assert_eq!(bob_as_seller.count, 5);
    assert_eq!(bob_as_seller.shown_average(), 3.4);
    let logo_rating = reviews.rating(RatingSubject::Gig(logo)).await?;
    assert_eq!(logo_rating, histogram([1, 0, 0, 2, 1]));
    assert_eq!(logo_rating.average(), 3.5);
    assert_eq!(
        reviews.rating(RatingSubject::Gig(site)).await?,
        histogram([0, 0, 1, 0, 0])
    );
    let ada_as_buyer = reviews.rating(RatingSubject::Buyer(ada)).await?;
    assert_eq!(ada_as_buyer, histogram([1, 1, 1, 1, 2]));
    assert_eq!(ada_as_buyer.shown_average(), 3.3);
    assert_eq!(
        reviews.rating(RatingSubject::Seller(carol)).await?,
        histogram([0, 1, 0, 0, 0])
    );
    for nobody in [
        RatingSubject::Buyer(bob),
        RatingSubject::Seller(ada),
        RatingSubject::Gig(GigId::new()),
    ] {
        let none = reviews.rating(nobody).await?;
        assert_eq!(none, RatingSummary::default());
        assert_eq!(none.average(), 0.0);
    }

    // Once its window closes, the hidden review counts too.
    let closed = unpublished.window_closes_at;
    assert_eq!(
        reviews.publish_due(closed, 10).await?,
        vec![published(&unpublished, closed)]
    );
    assert_eq!(
        reviews.rating(RatingSubject::Seller(bob)).await?,
        histogram([2, 0, 1, 2, 1])
    );
    assert_eq!(
        reviews.rating(RatingSubject::Gig(logo)).await?,
        histogram([2, 0, 0, 2, 1])
    );
    assert_eq!(
        reviews.rating(RatingSubject::Gig(site)).await?,
        histogram([0, 0, 1, 0, 0])
    );
    Ok(())
}
