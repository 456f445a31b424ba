//! Reviews as a service: writing one, the seller's reply, the lists and
//! ratings; and three things on a clock: publishing the reviews whose
//! window closed, reminding a side that has not reviewed before its window
//! closes, and recomputing every seller's level.
//!
//! A review that becomes visible changes its subjects' ratings, so the
//! seller's gigs go back through the search outbox and the index is flushed
//! before the writer's answer: search ranks and filters by the new rating
//! at once. A level that changes does the same for the seller's gigs.
//!
//! Everyone a review concerns is told in the notification center and by
//! e-mail (`review.*` kinds, the reviews mail category).

use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::ids::{OrderId, UserId};
use domain::live::{LiveEvent, Notification};
use domain::order::{Order, Side};
use domain::ports::{
    AccountStore, Clock, GigStore, OrderStore, ReviewStore, SellerLevelStore, StoreError,
};
use domain::review::{
    self, RatingSubject, RatingSummary, Review, ReviewCursor, ReviewDraft, ReviewError,
    ReviewPolicy, ReviewReply, SellerLevel,
};
use domain::validation::ValidationErrors;
use tokio::sync::{Mutex, Notify};

use crate::gigs::GigActors;
use crate::live::LiveEvents;
use crate::mail::MailQueue;
use crate::notices::{mail_notice, Notice};

#[derive(Clone, Debug)]
pub struct ReviewConfig {
    pub policy: ReviewPolicy,
    /// How often the clock looks for closed windows and due reminders
    /// (it also wakes at the earliest closing window).
    pub poll: Duration,
    /// How often every seller's level is recomputed.
    pub levels_every: Duration,
    /// Links in e-mails start with this.
    pub public_url: String,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        Self {
            policy: ReviewPolicy::default(),
            poll: Duration::from_secs(60),
            levels_every: Duration::from_secs(3600),
            public_url: "http://localhost:8080".into(),
        }
    }
}

pub struct ReviewDeps {
    pub reviews: Arc<dyn ReviewStore>,
    pub orders: Arc<dyn OrderStore>,
    pub levels: Arc<dyn SellerLevelStore>,
    pub accounts: Arc<dyn AccountStore>,
    pub gigs: Arc<dyn GigStore>,
    pub gig_actors: GigActors,
    pub live: LiveEvents,
    pub mail: MailQueue,
    pub clock: Arc<dyn Clock>,
}

/// Why a review request failed.
#[derive(Debug, thiserror::Error)]
pub enum ReviewFailure {
    /// No such order, or the caller is not one of its parties.
    #[error("no such order")]
    NotFound,
    #[error(transparent)]
    Rule(#[from] ReviewError),
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ReviewFailure {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict("review") => ReviewFailure::Rule(ReviewError::AlreadyReviewed),
            StoreError::Conflict("reply") => ReviewFailure::Rule(ReviewError::AlreadyReplied),
            other => ReviewFailure::Store(other),
        }
    }
}

/// What one run of the level recompute did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LevelRun {
    pub sellers: u32,
    pub changed: u32,
}

struct Inner {
    deps: ReviewDeps,
    config: ReviewConfig,
    wake: Arc<Notify>,
    /// Reminders are sent for orders completed up to here.
    reminded_through: Mutex<Option<(DateTime<Utc>, Option<OrderId>)>>,
}

/// The handle; cloning is cheap.
#[derive(Clone)]
pub struct ReviewService {
    inner: Arc<Inner>,
}

impl ReviewService {
    /// Starts the review clock and the level schedule.
    pub fn start(config: ReviewConfig, deps: ReviewDeps) -> Self {
        let service = Self {
            inner: Arc::new(Inner {
                deps,
                config,
                wake: Arc::new(Notify::new()),
                reminded_through: Mutex::new(None),
            }),
        };
        tokio::spawn(run_clock(Arc::downgrade(&service.inner)));
        tokio::spawn(run_levels(Arc::downgrade(&service.inner)));
        service
    }

    pub fn policy(&self) -> &ReviewPolicy {
        &self.inner.config.policy
    }

    /// Makes the clock look at windows and reminders now (after a test
    /// moved time).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.deps.clock.now()
    }

    /// The order, if `user` is one of its parties (or an admin).
    async fn order_for(
        &self,
        user: UserId,
        admin: bool,
        id: OrderId,
    ) -> Result<Order, ReviewFailure> {
        match self.inner.deps.orders.order(id).await? {
            Some(order) if admin || order.parties().contains(&user) => Ok(order),
            _ => Err(ReviewFailure::NotFound),
        }
    }

    /// `author` reviews the order. Hidden until the other side has
    /// reviewed too or the window closes; returns the stored review.
    pub async fn submit(
        &self,
        author: UserId,
        id: OrderId,
        draft: ReviewDraft,
    ) -> Result<Review, ReviewFailure> {
        let order = self.order_for(author, false, id).await?;
        let now = self.now();
        let mut written = review::write(&order, author, draft, &self.inner.config.policy, now)?;
        let published = self.inner.deps.reviews.submit(&written, now).await?;
        if published.is_empty() {
            self.waiting(&order, &written).await;
        } else {
            if let Some(mine) = published.iter().find(|r| r.side == written.side) {
                written = mine.clone();
            }
            self.published(published).await;
        }
        Ok(written)
    }

    /// The seller replies to the buyer's published review.
    pub async fn reply(
        &self,
        seller: UserId,
        id: OrderId,
        text: &str,
    ) -> Result<Review, ReviewFailure> {
        let order = self.order_for(seller, false, id).await?;
        let now = self.now();
        let reply = ReviewReply::parse(text, now)?;
        let reviews = self.inner.deps.reviews.reviews_of_order(order.id).await?;
        let buyers = reviews
            .iter()
            .find(|r| r.side == Side::Buyer)
            .ok_or(ReviewFailure::Rule(ReviewError::NotPublished))?;
        review::check_reply(buyers, seller)?;
        let replied = self.inner.deps.reviews.reply(order.id, &reply).await?;
        let notice = notice(
            &order,
            order.buyer_id,
            "review.reply",
            "The seller replied to your review",
            format!(
                "The seller answered your review of \"{}\": {}",
                order.terms.title, reply.text
            ),
        );
        self.tell(vec![notice], &format!("review:{}:reply", order.id))
            .await;
        Ok(replied)
    }

    /// The order and both sides' reviews, published or not, for one of its
    /// parties (or an admin); callers show each viewer what
    /// [`Review::visible_to`] allows.
    pub async fn of_order(
        &self,
        viewer: UserId,
        admin: bool,
        id: OrderId,
    ) -> Result<(Order, Vec<Review>), ReviewFailure> {
        let order = self.order_for(viewer, admin, id).await?;
        let reviews = self.inner.deps.reviews.reviews_of_order(order.id).await?;
        Ok((order, reviews))
    }

    pub async fn list(
        &self,
        subject: RatingSubject,
        before: Option<ReviewCursor>,
        limit: u32,
    ) -> Result<Vec<Review>, ReviewFailure> {
        Ok(self
            .inner
            .deps
            .reviews
            .reviews(subject, before, limit)
            .await?)
    }

    pub async fn rating(&self, subject: RatingSubject) -> Result<RatingSummary, ReviewFailure> {
        Ok(self.inner.deps.reviews.rating(subject).await?)
    }

    /// The seller's level as last computed; `New` before the first run.
    pub async fn level(&self, seller: UserId) -> Result<SellerLevel, StoreError> {
        stored_level(&*self.inner.deps.levels, seller).await
    }

    // ----------------------------------------------------------- telling

    /// One side reviewed; the other is told a review waits for theirs.
    async fn waiting(&self, order: &Order, written: &Review) {
        let (to, title) = match written.side {
            Side::Buyer => (order.seller_id, "Your buyer left a review"),
            Side::Seller => (order.buyer_id, "Your seller left a review"),
        };
        let notice = notice(
            order,
            to,
            "review.waiting",
            title,
            format!(
                "A review of \"{}\" is waiting for you. Leave yours to see it; both appear when you do, or when the review window closes.",
                order.terms.title
            ),
        );
        let source = format!("review:{}:{}:waiting", order.id, written.side.as_str());
        self.tell(vec![notice], &source).await;
    }

    /// Reviews became visible: their subjects hear of them (once per
    /// review), and search takes the new ratings before this returns.
    async fn published(&self, reviews: Vec<Review>) {
        let deps = &self.inner.deps;
        let mut notices = Vec::new();
        let mut sellers = Vec::new();
        for review in &reviews {
            let order = match deps.orders.order(review.order_id).await {
                Ok(Some(order)) => order,
                Ok(None) => continue,
                Err(error) => {
                    tracing::warn!(%error, order_id = %review.order_id, "reading a reviewed order failed");
                    continue;
                }
            };
            let stars = review.rating.get();
            let (title, body) = match review.side {
                Side::Buyer => (
                    "You received a review",
                    format!(
                        "Your buyer rated \"{}\" {stars} of 5 stars. You can reply to it once, publicly.",
                        order.terms.title
                    ),
                ),
                Side::Seller => (
                    "You received a review",
                    format!(
                        "Your seller rated you {stars} of 5 stars for \"{}\".",
                        order.terms.title
                    ),
                ),
            };
            let told = notice(&order, review.subject_id, "review.received", title, body);
            let source = format!("review:{}:published", review.order_id);
            notices.push((told, source));
            if review.side == Side::Buyer && !sellers.contains(&order.seller_id) {
                sellers.push(order.seller_id);
            }
        }
        for (told, source) in notices {
            self.tell(vec![told], &source).await;
        }
        self.reindex(&sellers).await;
    }

    /// Puts the sellers' gigs back through search and waits for the index.
    async fn reindex(&self, sellers: &[UserId]) {
        if sellers.is_empty() {
            return;
        }
        let deps = &self.inner.deps;
        for seller in sellers {
            if let Err(error) = deps.gigs.outbox_enqueue_seller(*seller).await {
                tracing::warn!(%error, seller_id = %seller, "queueing a seller's gigs for search failed");
            }
        }
        if let Err(error) = deps.gig_actors.flush_index().await {
            tracing::warn!(%error, "flushing the search index after a rating change failed");
        }
    }

    /// Notifies each user (live, in the notification center) and queues the
    /// matching e-mail, keyed by `source` so doing this twice mails and
    /// notifies once (the notification follows a newly queued mail).
    async fn tell(&self, notices: Vec<Notice>, source: &str) {
        let deps = &self.inner.deps;
        let now = self.now();
        for notice in notices {
            let new = mail_notice(
                &*deps.accounts,
                &deps.mail,
                &self.inner.config.public_url,
                &notice,
                source,
            )
            .await;
            if !new {
                continue;
            }
            let user = notice.user;
            let event = LiveEvent::Notification(notice.notification);
            if let Err(error) = deps.live.publish(&[user], event, now).await {
                tracing::warn!(%error, user_id = %user, "storing a review notification failed");
            }
        }
    }

    // ------------------------------------------------------------- clock

    /// Publishes every review whose window closed, sends the reminders
    /// that are due; returns how long to sleep.
    pub async fn tick(&self) -> Result<Duration, StoreError> {
        const BATCH: u32 = 100;
        let deps = &self.inner.deps;
        let now = self.now();
        loop {
            let due = deps.reviews.publish_due(now, BATCH).await?;
            let full = due.len() == BATCH as usize;
            if !due.is_empty() {
                tracing::info!(
                    count = due.len(),
                    "reviews published as their window closed"
                );
                for review in due {
                    self.published(vec![review]).await;
                }
            }
            if !full {
                break;
            }
        }
        self.remind(now).await?;
        let poll = self.inner.config.poll;
        let next = deps.reviews.next_window_close().await?;
        Ok(next.map_or(poll, |at| {
            (at - now).to_std().unwrap_or(Duration::ZERO).min(poll)
        }))
    }

    /// Reminds each side that has not reviewed an order whose window
    /// closes within `remind_before`. Each reminder is keyed by order and
    /// side, so it goes out once.
    async fn remind(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        const BATCH: u32 = 200;
        let policy = self.inner.config.policy;
        let deps = &self.inner.deps;
        let mut through = self.inner.reminded_through.lock().await;
        // Orders whose window is still open and closes soon completed in
        // (now - window, now - window + remind_before].
        let earliest = now - policy.window;
        let mut after = match *through {
            Some(mark) if mark.0 >= earliest => mark,
            _ => (earliest, None),
        };
        let until = now - policy.window + policy.remind_before;
        loop {
            let orders = deps.orders.completed_between(after, until, BATCH).await?;
            for order in &orders {
                self.remind_order(order).await?;
            }
            match orders.last() {
                Some(last) => after = (last.completed_at.unwrap_or(until), Some(last.id)),
                None => break,
            }
            if orders.len() < BATCH as usize {
                break;
            }
        }
        *through = Some(after);
        Ok(())
    }

    async fn remind_order(&self, order: &Order) -> Result<(), StoreError> {
        let Some(closes) = self.inner.config.policy.closes_at(order) else {
            return Ok(());
        };
        let written = self.inner.deps.reviews.reviews_of_order(order.id).await?;
        let mut notices = Vec::new();
        for (side, user) in [
            (Side::Buyer, order.buyer_id),
            (Side::Seller, order.seller_id),
        ] {
            if written.iter().any(|r| r.side == side) {
                continue;
            }
            notices.push(notice(
                order,
                user,
                "review.reminder",
                "Your review window is closing",
                format!(
                    "You can review \"{}\" until {}. Reviews help the marketplace; yours stays hidden until the other side has written theirs or the window closes.",
                    order.terms.title,
                    closes.format("%B %-d, %Y %H:%M UTC")
                ),
            ));
        }
        for notice in notices {
            let source = format!("review:{}:{}:reminder", order.id, notice.user);
            self.tell(vec![notice], &source).await;
        }
        Ok(())
    }

    // ------------------------------------------------------------ levels

    /// Recomputes every seller's level from their record and rating; the
    /// gigs of sellers whose level changed are reindexed and they are told.
    pub async fn recompute_levels(&self) -> Result<LevelRun, StoreError> {
        const BATCH: u32 = 200;
        let deps = &self.inner.deps;
        let mut run = LevelRun::default();
        let mut changed = Vec::new();
        let mut after = None;
        loop {
            let sellers = deps.levels.sellers_after(after, BATCH).await?;
            for seller in &sellers {
                let now = self.now();
                let mut record = deps.levels.seller_record(*seller, now).await?;
                record.rating = deps.reviews.rating(RatingSubject::Seller(*seller)).await?;
                let level = SellerLevel::of(&record);
                let before = deps.levels.set_level(*seller, level, &record, now).await?;
                run.sellers += 1;
                if before.unwrap_or(SellerLevel::New) != level {
                    run.changed += 1;
                    changed.push((*seller, before, level));
                }
            }
            after = sellers.last().copied();
            if sellers.len() < BATCH as usize {
                break;
            }
        }
        let sellers: Vec<UserId> = changed.iter().map(|(seller, ..)| *seller).collect();
        self.reindex(&sellers).await;
        for (seller, before, level) in changed {
            let up = before.is_none_or(|b| level > b);
            let notice = Notice {
                user: seller,
                notification: Notification {
                    kind: "level.changed".into(),
                    title: format!("Your seller level is now {}", level_name(level)),
                    body: if up {
                        "Congratulations: your track record earned a new seller level. It shows on your profile and your gigs.".into()
                    } else {
                        "Your seller level changed with your recent track record (orders, rating, on-time delivery and response time).".into()
                    },
                    order_id: None,
                    offer_id: None,
                    conversation_id: None,
                    gig_id: None,
                },
            };
            let source = format!("level:{seller}:{}", self.now().timestamp());
            self.tell(vec![notice], &source).await;
        }
        tracing::info!(
            sellers = run.sellers,
            changed = run.changed,
            "seller levels recomputed"
        );
        Ok(run)
    }
}

pub fn level_name(level: SellerLevel) -> &'static str {
    match level {
        SellerLevel::New => "New seller",
        SellerLevel::Level1 => "Level 1",
        SellerLevel::Level2 => "Level 2",
        SellerLevel::TopRated => "Top Rated",
    }
}

/// A notice about an order for one user.
fn notice(order: &Order, user: UserId, kind: &str, title: &str, body: String) -> Notice {
    Notice {
        user,
        notification: Notification {
            kind: kind.into(),
            title: title.into(),
            body,
            order_id: Some(order.id),
            offer_id: None,
            conversation_id: None,
            gig_id: None,
        },
    }
}

async fn run_clock(inner: Weak<Inner>) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let service = ReviewService { inner: strong };
        let wait = match service.tick().await {
            Ok(wait) => wait,
            Err(error) => {
                tracing::warn!(%error, "the review clock failed, trying again");
                Duration::from_secs(5)
            }
        };
        let wake = service.inner.wake.clone();
        drop(service);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = wake.notified() => {}
        }
    }
}

async fn run_levels(inner: Weak<Inner>) {
    // Levels are stored, so a start needs no run of its own: the first one
    // comes a period later.
    loop {
        let Some(every) = inner.upgrade().map(|i| i.config.levels_every) else {
            return;
        };
        tokio::time::sleep(every).await;
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let service = ReviewService { inner: strong };
        if let Err(error) = service.recompute_levels().await {
            tracing::warn!(%error, "recomputing seller levels failed, trying at the next run");
        }
    }
}

/// What search documents take from reviews: a gig's rating and its
/// seller's level.
pub struct ReviewSignals {
    pub reviews: Arc<dyn ReviewStore>,
    pub levels: Arc<dyn SellerLevelStore>,
}

#[async_trait::async_trait]
impl crate::indexer::GigSignals for ReviewSignals {
    async fn gig_rating(&self, gig: domain::ids::GigId) -> Result<RatingSummary, StoreError> {
        self.reviews.rating(RatingSubject::Gig(gig)).await
    }

    async fn seller_level(&self, seller: UserId) -> Result<SellerLevel, StoreError> {
        stored_level(&*self.levels, seller).await
    }
}

/// The seller's level as last computed; `New` before the first run.
async fn stored_level(
    levels: &dyn SellerLevelStore,
    seller: UserId,
) -> Result<SellerLevel, StoreError> {
    Ok(levels
        .level(seller)
        .await?
        .map_or(SellerLevel::New, |stored| stored.level))
}
