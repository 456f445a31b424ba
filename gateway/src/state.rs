//! Everything a request handler can reach, built once from [`Settings`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actors::chat::{ChatConfig, ChatService};
use actors::gigs::{GigActors, GigActorsConfig};
use actors::indexer::IndexerExtras;
use actors::live::LiveEvents;
use actors::mail::{MailConfig, MailQueue, Preferences, Recipient};
use actors::moderation::AdminFeed;
use actors::orders::{OrderService, OrdersConfig, OrdersDeps};
use actors::reviews::{ReviewConfig, ReviewDeps, ReviewService, ReviewSignals};
use adapters::aws::AwsConnection;
use adapters::clock::SystemClock;
use adapters::dynamo::reviews::DynamoReviewStore;
use adapters::dynamo::DynamoSessionStore;
use adapters::mail::{FileMailer, SmtpMailer, SmtpSettings, SmtpTls, UnsubscribeTokens};
use adapters::media::{ImageLimits, LocalMediaStore, S3MediaStore, S3Settings};
use adapters::password::{Argon2Cost, PasswordHasher};
use adapters::payments::{DevPayments, StripeConfig, StripePayments};
use adapters::ratelimit::{InMemoryLimiter, LimitPolicy};
use adapters::sql::SqlStore;
use anyhow::Context as _;
use chrono::TimeDelta;
use cluster::{LocalBus, LocalPresence};
use domain::account::{Email, NewUser, Password, Role, User, Username};
use domain::flag::FlagPolicy;
use domain::gig::Taxonomy;
use domain::ids::UserId;
use domain::mail::AccountMail;
use domain::ports::{
    AccountStore, ChatStore, Clock, EventLog, GigStore, LoginLimiter, Mailer, MediaStore,
    PaymentProvider, ReviewStore, SellerLevelStore, SessionStore,
};
use domain::review::ReviewPolicy;
use search::{ElasticsearchBackend, SearchBackend, SearchTier, TantivyIndex};
use secrecy::ExposeSecret;

use crate::config::{
    MailTransport, MediaBackend, MediaSettings, PaymentProviderKind, SessionBackend,
    SessionSettings, Settings, SmtpTlsMode,
};
use crate::error::ApiResult;
use crate::tokens::AccessTokens;
use crate::ws::SocketStats;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub accounts: Arc<dyn AccountStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub mailer: Arc<dyn Mailer>,
    /// The durable mail outbox and its sender: every e-mail goes through it.
    pub mail: MailQueue,
    /// Signs and checks the tokens of unsubscribe links (no sign-in).
    pub unsubscribe: Arc<UnsubscribeTokens>,
    pub hasher: PasswordHasher,
    pub tokens: Arc<AccessTokens>,
    /// Failed logins per account.
    pub account_limiter: Arc<dyn LoginLimiter>,
    /// Failed logins per client address.
    pub address_limiter: Arc<dyn LoginLimiter>,
    /// Account e-mails (verification, reset) per account.
    pub mail_limiter: Arc<dyn LoginLimiter>,
    pub clock: Arc<dyn Clock>,
    pub store: SqlStore,
    pub gigs: Arc<dyn GigStore>,
    /// The category taxonomy; fixed by a migration, so read once at start.
    pub taxonomy: Arc<Taxonomy>,
    pub gig_actors: GigActors,
    pub media: Arc<dyn MediaStore>,
    pub image_limits: ImageLimits,
    pub search: Arc<SearchTier>,
    /// Conversations, messages, presence; live events through `chat.live()`.
    pub chat: ChatService,
    /// Offers, checkout, orders, payments and earnings.
    pub orders: OrderService,
    /// Saved-search alerts and the daily digest.
    pub saved: actors::saved::SavedSearches,
    /// Reviews, ratings and seller levels.
    pub reviews: ReviewService,
    /// The payment provider's own handle, for what only it does (Stripe's
    /// webhooks, the development provider's extra step).
    pub payments: Payments,
    /// The moderation queue, the audit log, and the feed admin sockets
    /// follow (`feed.store()`).
    pub feed: AdminFeed,
    /// What flags a chat message for the admins.
    pub flag_policy: Arc<FlagPolicy>,
    pub sockets: Arc<SocketStats>,
    /// Set when the server starts shutting down: live sessions close.
    pub closing: Arc<tokio::sync::watch::Sender<bool>>,
}

impl AppState {
    /// Connects to the database (running migrations), opens the mailer and
    /// loads or creates the token key.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// [`AppState::build`] with another clock (tests move time by hand).
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&settings.server.data_dir).with_context(|| {
            format!(
                "creating the data directory {}",
                settings.server.data_dir.display()
            )
        })?;
        let store = SqlStore::connect(&settings.database_url(), settings.database.max_connections)
            .await
            .context("connecting to the database")?;
        store
            .migrate()
            .await
            .context("running database migrations")?;
        tracing::info!(backend = store.backend(), "database ready");

        let mailer: Arc<dyn Mailer> = match settings.mail.transport {
            MailTransport::File => {
                let outbox = settings.outbox_dir();
                tracing::info!(outbox = %outbox.display(), "e-mails are written to the outbox directory");
                Arc::new(
                    FileMailer::new(outbox, &settings.mail.from)
                        .context("configuring the mail outbox")?,
                )
            }
            MailTransport::Smtp => Arc::new(
                SmtpMailer::new(SmtpSettings {
                    host: settings.mail.smtp_host.clone(),
                    port: settings.mail.smtp_port,
                    tls: match settings.mail.smtp_tls {
                        SmtpTlsMode::None => SmtpTls::None,
                        SmtpTlsMode::Starttls => SmtpTls::StartTls,
                        SmtpTlsMode::Tls => SmtpTls::Tls,
                    },
                    username: settings.mail.smtp_username.clone(),
                    password: settings.mail.smtp_password.clone(),
                    from: settings.mail.from.clone(),
                    timeout: Duration::from_secs(settings.mail.smtp_timeout_secs),
                })
                .context("configuring SMTP")?,
            ),
        };

        let auth = &settings.auth;
        let concurrent = match auth.max_concurrent_hashes {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let hasher = PasswordHasher::new(
            Argon2Cost {
                memory_kib: auth.argon2_memory_kib,
                iterations: auth.argon2_iterations,
                parallelism: auth.argon2_parallelism,
            },
            concurrent,
        )
        .context("configuring argon2id")?;

        let secret = token_secret(&settings)?;
        let unsubscribe = Arc::new(UnsubscribeTokens::new(&secret, &settings.server.public_url));
        let ttl = TimeDelta::seconds(i64::try_from(auth.access_token_ttl_secs).unwrap_or(i64::MAX));
        let window = Duration::from_secs(auth.failure_window_secs);
        let lockout = Duration::from_secs(auth.lockout_secs);
        let limiter = |max_failures| {
            Arc::new(InMemoryLimiter::new(LimitPolicy {
                max_failures,
                window,
                lockout,
            })) as Arc<dyn LoginLimiter>
        };
        let hour = Duration::from_secs(3600);

        let media = media_store(&settings).await?;
        let search = search_tier(&settings).await?;
        let gigs: Arc<dyn GigStore> = Arc::new(store.clone());
        let taxonomy = Arc::new(
            gigs.taxonomy()
                .await
                .context("reading the category taxonomy")?,
        );
        let accounts: Arc<dyn AccountStore> = Arc::new(store.clone());
        let reviews = review_store(&settings, &store).await?;
        let levels: Arc<dyn SellerLevelStore> = Arc::new(store.clone());
        // Hears what the indexer indexed; bound to the alert actor below.
        let alert_listener = actors::saved::AlertListener::new();
        let gig_actors = GigActors::start(
            GigActorsConfig {
                shards: settings.gigs.shards,
                outbox_poll: Duration::from_secs(settings.gigs.outbox_poll_secs.max(1)),
                ..GigActorsConfig::default()
            },
            gigs.clone(),
            accounts.clone(),
            media.clone(),
            search.tier.clone(),
            IndexerExtras {
                signals: Arc::new(ReviewSignals {
                    reviews: reviews.clone(),
                    levels: levels.clone(),
                }),
                listener: Some(alert_listener.clone()),
            },
        )
        .await?;
        if search.needs_rebuild {
            if search.existed {
                tracing::warn!(
                    "the local search index was unreadable, rebuilding it from the database"
                );
            } else {
                tracing::info!("creating the local search index from the database");
            }
            match gig_actors.rebuild_index().await {
                Some(Ok(count)) => tracing::info!(searchable = count, "search index rebuilt"),
                Some(Err(error)) => anyhow::bail!("rebuilding the search index failed: {error}"),
                None => anyhow::bail!("the search indexer stopped while rebuilding"),
            }
        }
        let realtime = &settings.realtime;
        let chat_store: Arc<dyn ChatStore> = Arc::new(store.clone());
        let event_log: Arc<dyn EventLog> = Arc::new(store.clone());
        let live = LiveEvents::new(event_log, Arc::new(LocalBus::default()));
        live.spawn_pruning(
            TimeDelta::days(i64::from(realtime.event_retention_days.max(1))),
            Duration::from_secs(3600),
        );
        let chat = ChatService::start(
            ChatConfig {
                shards: realtime.conversation_shards,
                idle: Duration::from_secs(realtime.conversation_idle_secs.max(1)),
                typing_throttle: Duration::from_millis(realtime.typing_throttle_ms),
                ..ChatConfig::default()
            },
            chat_store.clone(),
            accounts.clone(),
            live.clone(),
            Arc::new(LocalPresence::new()),
        )
        .await?;
        let payments = payments(&settings)?;
        let mail = mail_queue(
            &settings,
            &store,
            mailer.clone(),
            clock.clone(),
            unsubscribe.clone(),
        );
        let feed = AdminFeed::new(Arc::new(store.clone()), clock.clone());
        let order_settings = &settings.orders;
        let orders = OrderService::start(
            OrdersConfig {
                shards: order_settings.shards,
                idle: Duration::from_secs(order_settings.idle_secs.max(1)),
                policy: order_settings.policy(),
                poll: Duration::from_secs(order_settings.clock_poll_secs.max(1)),
                public_url: settings.server.public_url.clone(),
                ..OrdersConfig::default()
            },
            OrdersDeps {
                store: Arc::new(store.clone()),
                accounts: accounts.clone(),
                gigs: gigs.clone(),
                chat: chat_store,
                payments: payments.provider(),
                live: live.clone(),
                clock: clock.clone(),
                mail: mail.clone(),
                feed: feed.clone(),
            },
        )
        .await?;
        let review_settings = &settings.reviews;
        let reviews = ReviewService::start(
            ReviewConfig {
                policy: ReviewPolicy {
                    window: TimeDelta::days(i64::from(review_settings.window_days.max(1))),
                    remind_before: TimeDelta::hours(i64::from(review_settings.remind_before_hours)),
                },
                poll: Duration::from_secs(review_settings.poll_secs.max(1)),
                levels_every: Duration::from_secs(review_settings.levels_every_secs.max(60)),
                public_url: settings.server.public_url.clone(),
            },
            ReviewDeps {
                reviews,
                orders: Arc::new(store.clone()),
                levels,
                accounts: accounts.clone(),
                gigs: gigs.clone(),
                gig_actors: gig_actors.clone(),
                live,
                mail: mail.clone(),
                clock: clock.clone(),
            },
        );
        let saved_settings = &settings.saved_searches;
        let saved = actors::saved::SavedSearches::start(
            actors::saved::SavedConfig {
                digest_hour: saved_settings.digest_hour,
                tick: Duration::from_secs(saved_settings.refresh_secs.max(1)),
                refresh: Duration::from_secs(saved_settings.refresh_secs.max(1)),
                digest_gigs_per_search: saved_settings.digest_gigs_per_search.max(1),
                public_url: settings.server.public_url.clone(),
                ..actors::saved::SavedConfig::default()
            },
            actors::saved::SavedDeps {
                store: Arc::new(store.clone()),
                accounts: accounts.clone(),
                gigs: gigs.clone(),
                live: chat.live().clone(),
                mail: mail.clone(),
                clock: clock.clone(),
                parse: crate::routes::saved::query_parser(),
            },
            &alert_listener,
        )
        .await?;
        if let Payments::Dev(dev) = &payments {
            // The development provider reports to the orders at once,
            // through the same path as Stripe's webhooks.
            dev.connect(Arc::new(orders.clone()))
                .map_err(|e| anyhow::anyhow!("connecting the development payments: {e}"))?;
        }
        let image_limits = ImageLimits {
            max_bytes: settings.media.max_upload_bytes,
            max_pixels: settings.media.max_pixels,
            ..ImageLimits::default()
        };
        let sessions = session_store(&settings, &store, accounts.clone()).await?;
        Ok(Self {
            gigs,
            taxonomy,
            gig_actors,
            media,
            image_limits,
            search: search.tier,
            chat,
            orders,
            saved,
            reviews,
            payments,
            feed,
            flag_policy: Arc::new(FlagPolicy {
                words: settings.moderation.flag_words.clone(),
            }),
            sockets: Arc::new(SocketStats::default()),
            closing: Arc::new(tokio::sync::watch::Sender::new(false)),
            accounts,
            sessions,
            mailer,
            mail,
            unsubscribe,
            hasher,
            tokens: Arc::new(AccessTokens::new(&secret, ttl)),
            account_limiter: limiter(auth.account_max_failures),
            address_limiter: limiter(auth.address_max_failures),
            mail_limiter: Arc::new(InMemoryLimiter::new(LimitPolicy {
                max_failures: auth.mail_per_account_per_hour,
                window: hour,
                lockout: hour,
            })),
            clock,
            store,
            settings: Arc::new(settings),
        })
    }

    /// Hashes the password and stores a new account. Operator-created
    /// accounts (`verified`) start with a verified address.
    pub async fn create_account(
        &self,
        email: Email,
        username: Username,
        password: &Password,
        role: Role,
        verified: bool,
    ) -> ApiResult<User> {
        let now = self.clock.now();
        let password_hash = self.hasher.hash(password).await?;
        let user = self
            .accounts
            .create_user(&NewUser {
                id: UserId::new(),
                email,
                username,
                password_hash,
                role,
                email_verified_at: verified.then_some(now),
                created_at: now,
            })
            .await?;
        tracing::info!(user_id = %user.id, role = role.as_str(), "account created");
        Ok(user)
    }

    /// Puts an account e-mail in the durable mail outbox (stored before
    /// this returns) and wakes the sender, which delivers it in the
    /// background, retrying: a slow or failing mail server never fails or
    /// slows the request that triggered it. A store failure is logged, not
    /// returned: what the request did is done already. Mail to an account
    /// (`&User`) follows its e-mail preferences when it is sent.
    pub async fn send_mail(&self, to: impl Into<Recipient>, mail: AccountMail) {
        let key = format!("account:{}:{}", mail.kind(), uuid::Uuid::now_v7());
        let kind = mail.kind();
        if let Err(error) = self.mail.enqueue(key, to, mail).await {
            tracing::error!(%error, kind, "queueing account e-mail failed");
        }
    }

    /// Closes the live sockets opened with login sessions that just ended.
    pub fn end_live_sessions(&self, user: UserId, ended: domain::live::EndedSessions) {
        self.chat
            .live()
            .notify(user, domain::live::LiveEvent::SessionsEnded(ended));
    }

    /// A link into the web client, e.g. `/verify-email?token=...`.
    pub fn link(&self, path: &str, token: &str) -> String {
        format!(
            "{}{}?token={}",
            self.settings.server.public_url.trim_end_matches('/'),
            path,
            token
        )
    }

    pub fn refresh_ttl(&self) -> TimeDelta {
        TimeDelta::days(i64::try_from(self.settings.auth.refresh_token_ttl_days).unwrap_or(3650))
    }
}

/// The mail outbox in the database, sent through `mailer`, honouring the
/// e-mail preferences stored beside it.
fn mail_queue(
    settings: &Settings,
    store: &SqlStore,
    mailer: Arc<dyn Mailer>,
    clock: Arc<dyn Clock>,
    unsubscribe: Arc<UnsubscribeTokens>,
) -> MailQueue {
    let mail = &settings.mail;
    MailQueue::start_with_preferences(
        MailConfig {
            poll: Duration::from_secs(mail.outbox_poll_secs.max(1)),
            max_attempts: mail.max_attempts.max(1),
            retry_base: Duration::from_secs(mail.retry_base_secs.max(1)),
            retry_max: Duration::from_secs(mail.retry_max_secs.max(mail.retry_base_secs).max(1)),
            // Longer than one delivery may take, so no other worker sends
            // the mail while this one still is.
            lease: Duration::from_secs(mail.smtp_timeout_secs.saturating_mul(3).max(60)),
            ..MailConfig::default()
        },
        Arc::new(store.clone()),
        mailer,
        clock,
        Preferences {
            store: Arc::new(store.clone()),
            links: unsubscribe,
        },
    )
}

async fn media_store(settings: &Settings) -> anyhow::Result<Arc<dyn MediaStore>> {
    let media = &settings.media;
    Ok(match media.backend {
        MediaBackend::Local => {
            let dir = settings.media_dir();
            Arc::new(
                LocalMediaStore::new(dir.clone())
                    .with_context(|| format!("opening the media directory {}", dir.display()))?,
            )
        }
        MediaBackend::S3 => {
            let store = S3MediaStore::new(s3_settings(media))
                .await
                .context("configuring S3 media storage")?;
            // Create the bucket on a first start; where the credentials may
            // not create buckets, the operator has made it already.
            if let Err(error) = store.ensure_bucket().await {
                tracing::warn!(%error, bucket = %media.s3_bucket, "cannot check or create the media bucket");
            }
            Arc::new(store)
        }
    })
}

/// Where sessions live: the database, or a DynamoDB table (created on a
/// first start; the accounts stay in the database, which the DynamoDB store
/// asks before opening a session, as the database's foreign key would).
async fn session_store(
    settings: &Settings,
    store: &SqlStore,
    accounts: Arc<dyn AccountStore>,
) -> anyhow::Result<Arc<dyn SessionStore>> {
    let sessions = &settings.sessions;
    Ok(match sessions.backend {
        SessionBackend::Sql => Arc::new(store.clone()),
        SessionBackend::DynamoDb => {
            let store =
                DynamoSessionStore::new(&dynamodb_connection(sessions), &sessions.dynamodb_table)
                    .await
                    .context("configuring DynamoDB sessions")?
                    .with_accounts(accounts);
            store.ensure_table().await.with_context(|| {
                format!(
                    "checking or creating the sessions table {}",
                    sessions.dynamodb_table
                )
            })?;
            tracing::info!(table = %sessions.dynamodb_table, "sessions in DynamoDB");
            Arc::new(store)
        }
    })
}

/// The review store the settings name: the database, or a DynamoDB table
/// (created if missing).
async fn review_store(
    settings: &Settings,
    store: &SqlStore,
) -> anyhow::Result<Arc<dyn ReviewStore>> {
    let reviews = &settings.reviews;
    Ok(match reviews.backend {
        SessionBackend::Sql => Arc::new(store.clone()),
        SessionBackend::DynamoDb => {
            let dynamo = DynamoReviewStore::new(
                &dynamodb_connection(&settings.sessions),
                &reviews.dynamodb_table,
            )
            .await
            .context("configuring DynamoDB reviews")?;
            dynamo.ensure_table().await.with_context(|| {
                format!(
                    "checking or creating the reviews table {}",
                    reviews.dynamodb_table
                )
            })?;
            tracing::info!(table = %reviews.dynamodb_table, "reviews in DynamoDB");
            Arc::new(dynamo)
        }
    })
}

/// How to reach DynamoDB, from the `sessions` section.
pub fn dynamodb_connection(sessions: &SessionSettings) -> AwsConnection {
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    AwsConnection {
        region: sessions.dynamodb_region.clone(),
        endpoint: non_empty(&sessions.dynamodb_endpoint),
        access_key_id: non_empty(&sessions.dynamodb_access_key_id),
        secret_access_key: sessions.dynamodb_secret_access_key.clone(),
    }
}

/// The S3 media store's settings, from the `media` section.
pub fn s3_settings(media: &MediaSettings) -> S3Settings {
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    S3Settings {
        bucket: media.s3_bucket.clone(),
        region: media.s3_region.clone(),
        endpoint: non_empty(&media.s3_endpoint),
        access_key_id: non_empty(&media.s3_access_key_id),
        secret_access_key: media.s3_secret_access_key.clone(),
        force_path_style: media.s3_force_path_style,
        presign_ttl: Duration::from_secs(media.s3_presign_ttl_secs),
    }
}

struct OpenedSearch {
    tier: Arc<SearchTier>,
    needs_rebuild: bool,
    /// Whether the index directory was there before (a first start has none).
    existed: bool,
}

async fn search_tier(settings: &Settings) -> anyhow::Result<OpenedSearch> {
    let dir = settings.search_dir();
    let existed = dir.exists();
    let opened = TantivyIndex::open(&dir)
        .with_context(|| format!("opening the search index in {}", dir.display()))?;
    let remote: Option<Arc<dyn SearchBackend>> = if settings.search.elasticsearch_url.is_empty() {
        None
    } else {
        let backend = ElasticsearchBackend::new(
            &settings.search.elasticsearch_url,
            &settings.search.elasticsearch_index,
            Duration::from_millis(settings.search.elasticsearch_timeout_ms),
        )
        .context("configuring Elasticsearch")?;
        if let Err(error) = backend.ensure_index().await {
            // Searches fall back to the local index until it answers.
            tracing::warn!(%error, "cannot prepare the Elasticsearch index yet");
        }
        tracing::info!(index = %settings.search.elasticsearch_index, "searches go to Elasticsearch, with the local index as fallback");
        Some(Arc::new(backend))
    };
    Ok(OpenedSearch {
        tier: Arc::new(
            SearchTier::new(Arc::new(opened.index), remote).with_remote_timeout(
                Duration::from_millis(settings.search.elasticsearch_timeout_ms),
            ),
        ),
        needs_rebuild: opened.needs_rebuild,
        existed,
    })
}

/// The configured key, or one generated on first start and kept in the data
/// directory so restarts do not log everyone out.
fn token_secret(settings: &Settings) -> anyhow::Result<Vec<u8>> {
    let configured = settings.auth.token_secret.expose_secret();
    if !configured.is_empty() {
        anyhow::ensure!(
            configured.len() >= 32,
            "auth.token_secret must be at least 32 bytes"
        );
        return Ok(configured.as_bytes().to_vec());
    }
    let path = settings.server.data_dir.join("token-secret");
    if path.exists() {
        let secret = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        anyhow::ensure!(secret.len() >= 32, "{} is too short", path.display());
        return Ok(secret);
    }
    let secret = adapters::token::generate().into_bytes();
    write_private(&path, &secret)?;
    tracing::info!(path = %path.display(), "generated a new token signing key");
    Ok(secret)
}

fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The configured payment provider.
#[derive(Clone)]
pub enum Payments {
    Dev(Arc<DevPayments>),
    Stripe(Arc<StripePayments>),
}

impl Payments {
    pub fn provider(&self) -> Arc<dyn PaymentProvider> {
        match self {
            Payments::Dev(dev) => dev.clone(),
            Payments::Stripe(stripe) => stripe.clone(),
        }
    }
}

fn payments(settings: &Settings) -> anyhow::Result<Payments> {
    let config = &settings.payments;
    Ok(match config.provider {
        PaymentProviderKind::Dev => {
            tracing::info!("payments: development provider (test cards, nothing is charged)");
            Payments::Dev(Arc::new(DevPayments::new()))
        }
        PaymentProviderKind::Stripe => {
            let api_base = match config.stripe_api_base.trim() {
                "" => None,
                base => {
                    Some(url::Url::parse(base).context("payments.stripe_api_base is not a URL")?)
                }
            };
            tracing::info!(local = api_base.is_some(), "payments: Stripe");
            Payments::Stripe(Arc::new(
                StripePayments::new(StripeConfig {
                    secret_key: config.stripe_secret_key.clone(),
                    api_base,
                    webhook_secret: config.stripe_webhook_secret.clone(),
                })
                .map_err(|e| anyhow::anyhow!("configuring Stripe: {e}"))?,
            ))
        }
    })
}
