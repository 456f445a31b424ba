//! Saved-search alerts and the daily digest.
//!
//! [`SavedSearchAlerts`] is one actor per node. The search indexer tells it
//! (through [`AlertListener`], the indexer's `IndexListener`) which
//! documents the search tier just accepted: new gigs, edits, re-indexing.
//! For each document it asks the store when the gig was first public
//! (`SavedStore::first_public`, recorded the first time a gig is seen), and
//! matches the gig only against the saved searches it is new to: saved
//! before the gig was first public, and not the gig's own seller's. The
//! searches with alerts or the digest on are held in memory with their
//! parsed queries (the gateway tells the actor of every change it makes;
//! a periodic reload picks up changes made on other nodes). A gig that
//! matches is stored once per search, and the user's notification
//! (`saved_search.match`) goes into their event log in the same
//! transaction (`SavedStore::record_matches`), once per user and gig
//! whatever edits and re-indexing follow; it is then published live.
//!
//! The digest runs daily at the configured hour (UTC), checked on a timer
//! against the clock: for each user whose searches with the digest on
//! matched gigs since their last digest, one e-mail with a section per
//! search lists the gigs still public, and the searches are marked digested
//! up to the newest match included. The mail is keyed by the user and that
//! time, so a digest repeated after a crash is queued once. Matching and the
//! digest run in the same actor, so no match slips between a user's digest
//! being read and marked; a run handles a page of users per message, so
//! alerts keep flowing between pages of a long digest.
//!
//! Alerts are at most once: a document the indexer handed over just
//! before the node stopped may not be matched (the indexer acknowledged its
//! outbox entry already).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::ids::{GigId, UserId};
use domain::live::{LiveEvent, Notification};
use domain::mail::{AccountMail, DigestGig, DigestSection};
use domain::money::{Currency, Money};
use domain::ports::{
    AccountStore, Clock, DigestSearch, GigStore, MatchWrite, SavedStore, StoreError,
};
use domain::saved::{next_digest_at, SavedQuery, SavedSearch, SavedSearchId};
use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use search::{DocumentTerms, GigDocument, QueryMatcher, SearchQuery};

use crate::gigs::StartError;
use crate::indexer::IndexListener;
use crate::live::LiveEvents;
use crate::mail::MailQueue;

/// The notification kind of an alert.
pub const MATCH_KIND: &str = "saved_search.match";

/// Turns a saved search's stored parameters into a query: the gateway's
/// own parsing of search parameters. `None` for parameters it no longer
/// accepts (such a search is not matched).
pub type QueryParser = Arc<dyn Fn(&SavedQuery) -> Option<SearchQuery> + Send + Sync>;

#[derive(Clone, Debug)]
pub struct SavedConfig {
    /// The hour of the day (UTC) the digest runs at.
    pub digest_hour: u32,
    /// How often the digest schedule is compared with the clock.
    pub tick: Duration,
    /// How often the searches in memory are reloaded from the store.
    pub refresh: Duration,
    /// Gigs listed per search in a digest; the rest are counted.
    pub digest_gigs_per_search: usize,
    /// Base of the links in digests.
    pub public_url: String,
    /// How long a caller waits for the actor to answer.
    pub call_timeout: Duration,
}

impl Default for SavedConfig {
    fn default() -> Self {
        Self {
            digest_hour: 8,
            tick: Duration::from_secs(60),
            refresh: Duration::from_secs(60),
            digest_gigs_per_search: 10,
            public_url: "http://127.0.0.1:8080".into(),
            call_timeout: Duration::from_secs(30),
        }
    }
}

pub struct SavedDeps {
    pub store: Arc<dyn SavedStore>,
    pub accounts: Arc<dyn AccountStore>,
    pub gigs: Arc<dyn GigStore>,
    pub live: LiveEvents,
    pub mail: MailQueue,
    pub clock: Arc<dyn Clock>,
    pub parse: QueryParser,
}

pub enum SavedMsg {
    /// The search tier accepted these documents.
    Indexed(Vec<GigDocument>),
    /// A saved search was created or changed.
    Changed(Box<SavedSearch>),
    Removed(SavedSearchId),
    /// Reload every watching search from the store.
    Refresh,
    /// Start the digest if it is due.
    Tick,
    /// Run the digest now; replies with how many mails it queued.
    RunDigest(RpcReplyPort<Result<u32, StoreError>>),
    /// The digest of the next users after `after`; the rest of a run
    /// follows as another message, so alerts go on between pages.
    DigestPage(DigestRun),
    Snapshot(RpcReplyPort<AlertsSnapshot>),
}

/// A digest run in progress: where it is and what it queued so far.
pub struct DigestRun {
    after: Option<UserId>,
    queued: u32,
    reply: Option<RpcReplyPort<Result<u32, StoreError>>>,
}

/// What the actor holds and has done, for tests and diagnostics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertsSnapshot {
    /// Saved searches with alerts or the digest on, in memory.
    pub watching: usize,
    /// Documents looked at.
    pub documents: u64,
    /// Alerts stored and published.
    pub alerts: u64,
    /// Digest mails queued.
    pub digests: u64,
    pub failures: u64,
    pub next_digest_at: DateTime<Utc>,
}

/// The search indexer's listener: hands what it indexed to the actor.
/// Documents indexed before the actor is bound (at start, while the rest
/// of the server is built) wait here.
pub struct AlertListener {
    target: Mutex<Target>,
}

enum Target {
    Waiting(Vec<Vec<GigDocument>>),
    Bound(ActorRef<SavedMsg>),
}

impl AlertListener {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            target: Mutex::new(Target::Waiting(Vec::new())),
        })
    }

    fn bind(&self, actor: ActorRef<SavedMsg>) {
        let mut target = self.target.lock().unwrap_or_else(PoisonError::into_inner);
        if let Target::Waiting(waiting) = &mut *target {
            for docs in waiting.drain(..) {
                let _ = actor.cast(SavedMsg::Indexed(docs));
            }
        }
        *target = Target::Bound(actor);
    }
}

impl IndexListener for AlertListener {
    fn indexed(&self, documents: &[GigDocument]) {
        let mut target = self.target.lock().unwrap_or_else(PoisonError::into_inner);
        match &mut *target {
            Target::Waiting(waiting) => waiting.push(documents.to_vec()),
            Target::Bound(actor) => {
                // A stopped actor (the server is shutting down) hears nothing.
                let _ = actor.cast(SavedMsg::Indexed(documents.to_vec()));
            }
        }
    }
}

/// The handle the gateway calls. Cloning is cheap.
#[derive(Clone)]
pub struct SavedSearches {
    actor: ActorRef<SavedMsg>,
    call_timeout: Duration,
}

impl SavedSearches {
    /// Loads the watching searches, starts the actor and binds `listener`
    /// to it (handing over what the listener holds).
    pub async fn start(
        config: SavedConfig,
        deps: SavedDeps,
        listener: &AlertListener,
    ) -> Result<Self, StartError> {
        let call_timeout = config.call_timeout;
        let (actor, _) = Actor::spawn(None, SavedSearchAlerts, (config, deps))
            .await
            .map_err(|e| StartError::Spawn(e.to_string()))?;
        listener.bind(actor.clone());
        Ok(Self {
            actor,
            call_timeout,
        })
    }

    /// A saved search was created or changed: match new gigs against it as
    /// it is now.
    pub fn changed(&self, search: &SavedSearch) {
        let _ = self.actor.cast(SavedMsg::Changed(Box::new(search.clone())));
    }

    /// A saved search was deleted.
    pub fn removed(&self, id: SavedSearchId) {
        let _ = self.actor.cast(SavedMsg::Removed(id));
    }

    /// Makes the actor compare the digest schedule with the clock now
    /// (after a test moved time).
    pub fn tick(&self) {
        let _ = self.actor.cast(SavedMsg::Tick);
    }

    /// Runs the digest now; how many mails it queued. `None` when the actor
    /// does not answer.
    pub async fn run_digest(&self) -> Option<Result<u32, StoreError>> {
        match self
            .actor
            .call(SavedMsg::RunDigest, Some(self.call_timeout))
            .await
        {
            Ok(CallResult::Success(result)) => Some(result),
            _ => None,
        }
    }

    /// Answers once every message sent before has been handled (a digest
    /// run those messages started may still be going on).
    pub async fn snapshot(&self) -> Option<AlertsSnapshot> {
        match self
            .actor
            .call(SavedMsg::Snapshot, Some(self.call_timeout))
            .await
        {
            Ok(CallResult::Success(snapshot)) => Some(snapshot),
            _ => None,
        }
    }

    pub fn stop(&self) {
        self.actor.stop(None);
    }
}

/// A saved search in memory, with its query ready to match.
struct Watched {
    search: SavedSearch,
    matcher: QueryMatcher,
}

pub struct SavedState {
    config: SavedConfig,
    deps: SavedDeps,
    watching: HashMap<SavedSearchId, Watched>,
    next_digest: DateTime<Utc>,
    snapshot: AlertsSnapshot,
}

pub struct SavedSearchAlerts;

/// Searches read from the store per page when reloading.
const PAGE: u32 = 500;
/// Users whose digest one message handles.
const DIGEST_PAGE: u32 = 20;

impl SavedState {
    fn watch(&mut self, search: SavedSearch) {
        if !search.watches() {
            self.watching.remove(&search.id);
            return;
        }
        match (self.deps.parse)(&search.query) {
            Some(query) => {
                let matcher = QueryMatcher::new(&query);
                self.watching.insert(search.id, Watched { search, matcher });
            }
            None => {
                tracing::warn!(search_id = %search.id, "a saved search's parameters no longer parse, not matching it");
                self.watching.remove(&search.id);
            }
        }
    }

    async fn reload(&mut self) -> Result<(), StoreError> {
        let mut after = None;
        let mut fresh = Vec::new();
        loop {
            let page = self.deps.store.watching_searches(after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            fresh.extend(page);
        }
        self.watching.clear();
        for search in fresh {
            self.watch(search);
        }
        self.snapshot.watching = self.watching.len();
        Ok(())
    }

    /// The searches a gig first public at `published` is new to and
    /// matches, per user (not its own seller), oldest first.
    fn matching(
        &self,
        doc: &GigDocument,
        published: DateTime<Utc>,
    ) -> BTreeMap<UserId, Vec<SavedSearch>> {
        let seller = UserId::from_uuid(doc.seller_id);
        let candidates: Vec<&Watched> = self
            .watching
            .values()
            .filter(|w| w.search.user_id != seller && w.search.is_new(published))
            .collect();
        let mut by_user: BTreeMap<UserId, Vec<SavedSearch>> = BTreeMap::new();
        if candidates.is_empty() {
            return by_user;
        }
        let terms = DocumentTerms::new(doc);
        for watched in candidates {
            if watched.matcher.matches(doc, &terms) {
                by_user
                    .entry(watched.search.user_id)
                    .or_default()
                    .push(watched.search.clone());
            }
        }
        for searches in by_user.values_mut() {
            searches.sort_by_key(|s| (s.created_at, s.id));
        }
        by_user
    }

    /// Matches the documents against the searches they are new to, stores
    /// the matches and publishes the alerts.
    async fn indexed(&mut self, docs: Vec<GigDocument>) -> Result<(), StoreError> {
        self.snapshot.documents += docs.len() as u64;
        let now = self.deps.clock.now();
        let ids: Vec<GigId> = docs.iter().map(|d| GigId::from_uuid(d.gig_id)).collect();
        let first_public = self.deps.store.first_public(&ids, now).await?;
        if self.watching.is_empty() {
            return Ok(());
        }
        for (doc, (gig_id, published)) in docs.iter().zip(first_public) {
            if let Err(error) = self.alert(doc, gig_id, published, now).await {
                // The next documents still get their chance.
                self.snapshot.failures += 1;
                tracing::warn!(%error, %gig_id, "matching a gig against saved searches failed");
            }
        }
        Ok(())
    }

    /// Stores the gig's matches for each user whose searches it is new to
    /// and matches, and publishes their alerts.
    async fn alert(
        &mut self,
        doc: &GigDocument,
        gig_id: GigId,
        published: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for (user, searches) in self.matching(doc, published) {
            let account = self.deps.accounts.user_by_id(user).await?;
            if !account.is_some_and(|a| a.can_sign_in()) {
                continue;
            }
            let ids: Vec<SavedSearchId> = searches.iter().map(|s| s.id).collect();
            let alert = searches
                .iter()
                .find(|s| s.alerts)
                .map(|s| alert_event(s, doc, gig_id));
            let stored = self
                .deps
                .store
                .record_matches(&MatchWrite {
                    user_id: user,
                    gig_id,
                    searches: &ids,
                    alert: alert.as_ref(),
                    now,
                })
                .await?;
            if !stored.is_empty() {
                self.snapshot.alerts += 1;
                tracing::debug!(user_id = %user, %gig_id, "saved search alert");
            }
            self.deps.live.deliver(&stored);
        }
        Ok(())
    }

    /// One page of a digest run: queues the digest of each of the next
    /// users with news. `false` when the run is over.
    async fn digest_page(&mut self, run: &mut DigestRun) -> Result<bool, StoreError> {
        let users = self.deps.store.digest_users(run.after, DIGEST_PAGE).await?;
        let Some(last) = users.last() else {
            return Ok(false);
        };
        run.after = Some(*last);
        let mut sellers = HashMap::new();
        for user in users {
            match self.digest_for(user, &mut sellers).await {
                Ok(true) => run.queued += 1,
                Ok(false) => {}
                Err(error) => {
                    self.snapshot.failures += 1;
                    tracing::warn!(%error, user_id = %user, "a saved-search digest failed, will retry with the next one");
                }
            }
        }
        Ok(true)
    }

    /// The digest of one user; `true` when a mail was queued.
    async fn digest_for(
        &self,
        user: UserId,
        sellers: &mut HashMap<UserId, bool>,
    ) -> Result<bool, StoreError> {
        let pending = self.deps.store.digest_pending(user).await?;
        let Some(through) = pending
            .iter()
            .flat_map(|p| p.gigs.iter().map(|(_, at)| *at))
            .max()
        else {
            return Ok(false);
        };
        let account = self
            .deps
            .accounts
            .user_by_id(user)
            .await?
            .filter(|a| a.can_sign_in());
        let mut queued = false;
        if let Some(account) = account {
            let sections = self.sections(&pending, sellers).await?;
            if !sections.is_empty() {
                let base = self.config.public_url.trim_end_matches('/');
                let mail = AccountMail::SavedSearchDigest {
                    username: account.username.to_string(),
                    sections,
                    link: format!("{base}/saved-searches"),
                };
                let key = format!("saved_search.digest:{user}:{}", through.timestamp_micros());
                queued = self.deps.mail.enqueue(key, &account, mail).await?;
            }
        }
        self.deps.store.mark_digested(user, through).await?;
        Ok(queued)
    }

    /// A section per search, listing the gigs that are still public.
    async fn sections(
        &self,
        pending: &[DigestSearch],
        sellers: &mut HashMap<UserId, bool>,
    ) -> Result<Vec<DigestSection>, StoreError> {
        let base = self.config.public_url.trim_end_matches('/');
        let mut sections = Vec::new();
        for entry in pending {
            let mut gigs = Vec::new();
            let mut more = 0u32;
            for (gig_id, _) in &entry.gigs {
                let Some(gig) = self.deps.gigs.gig(*gig_id).await? else {
                    continue;
                };
                if !gig.is_public() {
                    continue;
                }
                let seller_active = match sellers.get(&gig.seller_id) {
                    Some(active) => *active,
                    None => {
                        let active = self
                            .deps
                            .accounts
                            .user_by_id(gig.seller_id)
                            .await?
                            .is_some_and(|s| s.can_sign_in());
                        sellers.insert(gig.seller_id, active);
                        active
                    }
                };
                if !seller_active {
                    continue;
                }
                if gigs.len() >= self.config.digest_gigs_per_search {
                    more += 1;
                    continue;
                }
                gigs.push(DigestGig {
                    title: gig.content.title.clone(),
                    price: Money {
                        amount_minor: gig.price_range().0,
                        currency: Currency::MARKETPLACE,
                    },
                    link: format!("{base}/gigs/{}", gig.id),
                });
            }
            if !gigs.is_empty() {
                sections.push(DigestSection {
                    name: entry.search.name.to_string(),
                    gigs,
                    more,
                });
            }
        }
        Ok(sections)
    }
}

/// The notification a user gets when a new gig matches their search.
fn alert_event(search: &SavedSearch, doc: &GigDocument, gig_id: GigId) -> LiveEvent {
    let price = Money {
        amount_minor: doc.price_min,
        currency: Currency::MARKETPLACE,
    };
    LiveEvent::Notification(Notification {
        kind: MATCH_KIND.to_owned(),
        title: format!("New gig for \"{}\"", search.name),
        body: format!("{}, from {price}, by {}", doc.title, doc.seller_name),
        order_id: None,
        offer_id: None,
        conversation_id: None,
        gig_id: Some(gig_id),
    })
}

impl Actor for SavedSearchAlerts {
    type Msg = SavedMsg;
    type State = SavedState;
    type Arguments = (SavedConfig, SavedDeps);

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        (config, deps): (SavedConfig, SavedDeps),
    ) -> Result<Self::State, ActorProcessingErr> {
        let now = deps.clock.now();
        let next_digest = next_digest_at(now, config.digest_hour);
        myself.send_interval(config.tick, || SavedMsg::Tick);
        myself.send_interval(config.refresh, || SavedMsg::Refresh);
        let mut state = SavedState {
            config,
            deps,
            watching: HashMap::new(),
            next_digest,
            snapshot: AlertsSnapshot {
                watching: 0,
                documents: 0,
                alerts: 0,
                digests: 0,
                failures: 0,
                next_digest_at: next_digest,
            },
        };
        state.reload().await?;
        tracing::info!(watching = state.watching.len(), next_digest = %next_digest, "saved-search alerts started");
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SavedMsg::Indexed(docs) => {
                if let Err(error) = state.indexed(docs).await {
                    state.snapshot.failures += 1;
                    tracing::warn!(%error, "matching new gigs against saved searches failed");
                }
            }
            SavedMsg::Changed(search) => {
                state.watch(*search);
                state.snapshot.watching = state.watching.len();
            }
            SavedMsg::Removed(id) => {
                state.watching.remove(&id);
                state.snapshot.watching = state.watching.len();
            }
            SavedMsg::Refresh => {
                if let Err(error) = state.reload().await {
                    state.snapshot.failures += 1;
                    tracing::warn!(%error, "reloading saved searches failed, keeping the ones in memory");
                }
            }
            SavedMsg::Tick => {
                let now = state.deps.clock.now();
                if now >= state.next_digest {
                    state.next_digest = next_digest_at(now, state.config.digest_hour);
                    state.snapshot.next_digest_at = state.next_digest;
                    let _ = myself.cast(SavedMsg::DigestPage(DigestRun {
                        after: None,
                        queued: 0,
                        reply: None,
                    }));
                }
            }
            SavedMsg::RunDigest(reply) => {
                let _ = myself.cast(SavedMsg::DigestPage(DigestRun {
                    after: None,
                    queued: 0,
                    reply: Some(reply),
                }));
            }
            SavedMsg::DigestPage(mut run) => match state.digest_page(&mut run).await {
                Ok(true) => {
                    let _ = myself.cast(SavedMsg::DigestPage(run));
                }
                Ok(false) => {
                    state.snapshot.digests += u64::from(run.queued);
                    if run.queued > 0 {
                        tracing::info!(queued = run.queued, "saved-search digests queued");
                    }
                    if let Some(reply) = run.reply {
                        let _ = reply.send(Ok(run.queued));
                    }
                }
                Err(error) => {
                    // A scheduled run starts again at the next tick.
                    state.snapshot.failures += 1;
                    state.snapshot.digests += u64::from(run.queued);
                    tracing::warn!(%error, "the saved-search digest failed, trying again");
                    if let Some(reply) = run.reply {
                        let _ = reply.send(Err(error));
                    } else {
                        state.next_digest = state.deps.clock.now();
                    }
                }
            },
            SavedMsg::Snapshot(reply) => {
                let _ = reply.send(state.snapshot.clone());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::saved::SearchName;

    #[test]
    fn an_alert_names_the_search_and_the_gig() {
        let search = SavedSearch::new(
            UserId::new(),
            SearchName::parse("Logos").unwrap_or_else(|e| panic!("{e}")),
            SavedQuery::from_json("{}".into()),
            true,
            false,
            Utc::now(),
        );
        let gig_id = GigId::new();
        let doc = GigDocument {
            gig_id: gig_id.as_uuid(),
            title: "I will design your logo".into(),
            description: String::new(),
            tags: Vec::new(),
            category: "graphics-design".into(),
            category_name: "Graphics & Design".into(),
            subcategory: "logo-design".into(),
            subcategory_name: "Logo Design".into(),
            seller_id: uuid::Uuid::nil(),
            seller_username: "ada".into(),
            seller_name: "Ada L.".into(),
            seller_level: search::SellerLevel::New,
            price_min: 2500,
            price_max: 2500,
            delivery_days_min: 3,
            rating_avg: 0.0,
            rating_count: 0,
            image_url: None,
            created_at: Utc::now(),
        };
        let LiveEvent::Notification(n) = alert_event(&search, &doc, gig_id) else {
            panic!("a notification");
        };
        assert_eq!(n.kind, "saved_search.match");
        assert_eq!(n.title, "New gig for \"Logos\"");
        assert_eq!(n.body, "I will design your logo, from 25.00 USD, by Ada L.");
        assert_eq!(n.gig_id, Some(gig_id));
    }
}
