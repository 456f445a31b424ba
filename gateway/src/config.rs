//! Typed settings. Defaults give the embedded marketplace; a TOML file and
//! then `MARKETPLACE_`-prefixed environment variables override them, with
//! `__` between section and key (`MARKETPLACE_DATABASE__URL`). See
//! `marketplace.example.toml` for every setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub const ENV_PREFIX: &str = "MARKETPLACE_";

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub mail: MailSettings,
    pub gigs: GigSettings,
    pub media: MediaSettings,
    pub sessions: SessionSettings,
    pub search: SearchSettings,
    pub realtime: RealtimeSettings,
    pub orders: OrderSettings,
    pub payments: PaymentSettings,
    pub moderation: ModerationSettings,
    pub saved_searches: SavedSearchSettings,
    pub reviews: ReviewSettings,
    pub log: LogSettings,
}

/// Moderation: the automatic checks on chat messages and the admins' live
/// statistics.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct ModerationSettings {
    /// Words and phrases that put a chat message in the admins' queue
    /// (whole words, any case), besides contact details, which always do.
    pub flag_words: Vec<String>,
    /// How often the admins' sockets get fresh statistics when they
    /// changed, in milliseconds.
    pub stats_interval_ms: u64,
}

impl Default for ModerationSettings {
    fn default() -> Self {
        Self {
            flag_words: Vec::new(),
            stats_interval_ms: 2000,
        }
    }
}

/// Favourites and saved searches: how many a user may keep, and the daily
/// digest of new gigs matching saved searches.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct SavedSearchSettings {
    /// Saved searches one user may keep.
    pub max_per_user: u32,
    /// Favourite gigs one user may keep.
    pub max_favourites: u32,
    /// The hour of the day (UTC, 0 to 23) the digest e-mail goes out.
    pub digest_hour: u32,
    /// Gigs listed per saved search in one digest; the rest are counted.
    pub digest_gigs_per_search: usize,
    /// Seconds between two looks at the digest schedule, and between two
    /// reloads of the saved searches (changes made on other nodes).
    pub refresh_secs: u64,
}

impl Default for SavedSearchSettings {
    fn default() -> Self {
        let limits = domain::saved::Limits::default();
        Self {
            max_per_user: limits.saved_searches,
            max_favourites: limits.favourites,
            digest_hour: 8,
            digest_gigs_per_search: 10,
            refresh_secs: 60,
        }
    }
}

impl SavedSearchSettings {
    pub fn limits(&self) -> domain::saved::Limits {
        domain::saved::Limits {
            saved_searches: self.max_per_user,
            favourites: self.max_favourites,
        }
    }
}

/// Orders: their actors and their timings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct OrderSettings {
    /// Order shard actors.
    pub shards: u32,
    /// Seconds an order actor stays in memory without activity.
    pub idle_secs: u64,
    /// Seconds an order may wait for payment before it is cancelled.
    pub unpaid_expiry_secs: i64,
    /// Seconds after a delivery with no answer from the buyer before the
    /// order completes by itself.
    pub auto_complete_secs: i64,
    /// Seconds after completion before the seller's earnings are available.
    pub clearance_secs: i64,
    /// The most days one extension may add.
    pub max_extension_days: u32,
    /// The order clock reads the stored deadlines at least this often.
    pub clock_poll_secs: u64,
}

impl Default for OrderSettings {
    fn default() -> Self {
        let policy = domain::order::OrderPolicy::default();
        Self {
            shards: 64,
            idle_secs: 300,
            unpaid_expiry_secs: policy.unpaid_expiry.num_seconds(),
            auto_complete_secs: policy.auto_complete_after.num_seconds(),
            clearance_secs: policy.clearance_after.num_seconds(),
            max_extension_days: policy.max_extension_days,
            clock_poll_secs: 30,
        }
    }
}

impl OrderSettings {
    pub fn policy(&self) -> domain::order::OrderPolicy {
        domain::order::OrderPolicy {
            unpaid_expiry: chrono::TimeDelta::seconds(self.unpaid_expiry_secs.max(1)),
            auto_complete_after: chrono::TimeDelta::seconds(self.auto_complete_secs.max(1)),
            clearance_after: chrono::TimeDelta::seconds(self.clearance_secs.max(1)),
            max_extension_days: self.max_extension_days.max(1),
        }
    }
}

/// Which payment provider collects and refunds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentProviderKind {
    /// Test cards, confirmed at once; nothing leaves the machine.
    #[default]
    Dev,
    Stripe,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct PaymentSettings {
    pub provider: PaymentProviderKind,
    /// Stripe's secret API key (`sk_...`).
    #[serde(serialize_with = "expose")]
    pub stripe_secret_key: SecretString,
    /// Another Stripe API address (a local Stripe double); empty for Stripe.
    pub stripe_api_base: String,
    /// The signing secret of the webhook endpoint (`whsec_...`).
    #[serde(serialize_with = "expose")]
    pub stripe_webhook_secret: SecretString,
}

/// The live socket (`/ws`) and chat.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct RealtimeSettings {
    /// Seconds a new socket has to send `hello`.
    pub hello_timeout_secs: u64,
    /// Seconds of silence from a client before a ping; as long again without
    /// an answer and the connection is closed.
    pub heartbeat_secs: u64,
    /// Frames waiting to be written to one socket; a client that lets it
    /// fill is disconnected (close code 4008).
    pub outbound_queue: usize,
    /// Seconds one frame may take to be written before the client counts as
    /// not reading.
    pub write_timeout_secs: u64,
    /// Largest text frame the protocol accepts; larger ones get an error.
    pub max_frame_bytes: usize,
    /// Requests per second a session may send on average ...
    pub requests_per_sec: u32,
    /// ... and at most this many at once.
    pub burst: u32,
    /// Requests of one session in progress at once.
    pub max_in_flight: usize,
    /// Initial read buffer of each socket, bytes (grows for larger frames).
    pub read_buffer_bytes: usize,
    /// Conversation shard actors.
    pub conversation_shards: u32,
    /// Seconds a conversation actor stays in memory without activity.
    pub conversation_idle_secs: u64,
    /// Least milliseconds between two typing events of one user in one
    /// conversation.
    pub typing_throttle_ms: u64,
    /// Days live events are kept for clients to resume from.
    pub event_retention_days: u32,
}

impl Default for RealtimeSettings {
    fn default() -> Self {
        Self {
            hello_timeout_secs: 10,
            heartbeat_secs: 30,
            outbound_queue: 256,
            write_timeout_secs: 10,
            max_frame_bytes: 64 * 1024,
            requests_per_sec: 20,
            burst: 40,
            max_in_flight: 32,
            read_buffer_bytes: 4096,
            conversation_shards: 64,
            conversation_idle_secs: 300,
            typing_throttle_ms: 3000,
            event_retention_days: 30,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct GigSettings {
    /// Gig shard actors. Changing it moves gigs between shards, which is safe:
    /// every write carries a version.
    pub shards: u32,
    /// Seconds between outbox polls of the search indexer (it is also woken
    /// by every write).
    pub outbox_poll_secs: u64,
}

impl Default for GigSettings {
    fn default() -> Self {
        Self {
            shards: 64,
            outbox_poll_secs: 2,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaBackend {
    /// Files under `media.dir`, served by the marketplace itself.
    #[default]
    Local,
    /// An S3 bucket; `/media/...` redirects to short-lived signed addresses.
    S3,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct MediaSettings {
    pub backend: MediaBackend,
    /// Empty: `<data_dir>/media`.
    pub dir: PathBuf,
    /// Largest image upload accepted, bytes.
    pub max_upload_bytes: usize,
    /// Largest image accepted, pixels (width times height).
    pub max_pixels: u64,
    pub s3_bucket: String,
    pub s3_region: String,
    /// Empty: AWS. Set for S3-compatible stores.
    pub s3_endpoint: String,
    pub s3_force_path_style: bool,
    /// Empty: the default AWS credential chain (environment, web identity, instance role).
    pub s3_access_key_id: String,
    #[serde(serialize_with = "expose_option")]
    pub s3_secret_access_key: Option<SecretString>,
    /// Lifetime of signed media addresses, seconds.
    pub s3_presign_ttl_secs: u64,
}

impl Default for MediaSettings {
    fn default() -> Self {
        Self {
            backend: MediaBackend::Local,
            dir: PathBuf::new(),
            max_upload_bytes: 5 * 1024 * 1024,
            max_pixels: 40_000_000,
            s3_bucket: String::new(),
            s3_region: "us-east-1".into(),
            s3_endpoint: String::new(),
            s3_force_path_style: false,
            s3_access_key_id: String::new(),
            s3_secret_access_key: None,
            s3_presign_ttl_secs: 900,
        }
    }
}

/// Where reviews live, their window, and how often levels are recomputed.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct ReviewSettings {
    /// `sql` (the database) or `dynamodb` (one table, created at start if
    /// missing, reached with the DynamoDB settings of `[sessions]`).
    pub backend: SessionBackend,
    pub dynamodb_table: String,
    /// Reviews may be written this long after an order completes; hidden
    /// reviews are published when it ends.
    pub window_days: u32,
    /// A side that has not reviewed is reminded this long before the window
    /// closes.
    pub remind_before_hours: u32,
    /// How often closed windows and reminders are looked for (the clock
    /// also wakes at the earliest closing window).
    pub poll_secs: u64,
    /// How often every seller's level is recomputed.
    pub levels_every_secs: u64,
}

impl Default for ReviewSettings {
    fn default() -> Self {
        Self {
            backend: SessionBackend::Sql,
            dynamodb_table: "marketplace-reviews".into(),
            window_days: 14,
            remind_before_hours: 48,
            poll_secs: 60,
            levels_every_secs: 3600,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionBackend {
    /// Tables of the database (sessions: `sessions` and `refresh_tokens`;
    /// reviews: `reviews`).
    #[default]
    Sql,
    /// One DynamoDB table (created at start if missing).
    DynamoDb,
}

/// Where login sessions and their refresh tokens live.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct SessionSettings {
    pub backend: SessionBackend,
    pub dynamodb_table: String,
    pub dynamodb_region: String,
    /// Empty: AWS. Set for a local `moto_server` or another endpoint.
    pub dynamodb_endpoint: String,
    /// Empty: the default AWS credential chain (environment, web identity, instance role).
    pub dynamodb_access_key_id: String,
    #[serde(serialize_with = "expose_option")]
    pub dynamodb_secret_access_key: Option<SecretString>,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            backend: SessionBackend::Sql,
            dynamodb_table: "marketplace-sessions".into(),
            dynamodb_region: "us-east-1".into(),
            dynamodb_endpoint: String::new(),
            dynamodb_access_key_id: String::new(),
            dynamodb_secret_access_key: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct SearchSettings {
    /// Empty: `<data_dir>/search`. The local tantivy index: the whole search
    /// tier by default, the autocomplete cache and fallback with Elasticsearch.
    pub index_dir: PathBuf,
    /// Empty: no Elasticsearch. `http://host:9200` sends searches there.
    pub elasticsearch_url: String,
    pub elasticsearch_index: String,
    /// Past this, a search falls back to the local index.
    pub elasticsearch_timeout_ms: u64,
}

impl Default for SearchSettings {
    fn default() -> Self {
        Self {
            index_dir: PathBuf::new(),
            elasticsearch_url: String::new(),
            elasticsearch_index: "gigs".into(),
            elasticsearch_timeout_ms: 800,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct ServerSettings {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Base address users reach the marketplace at; e-mail links start with it.
    pub public_url: String,
    /// Where the embedded defaults keep their files (database, outbox, keys).
    pub data_dir: PathBuf,
    /// Take the client address from the last `X-Forwarded-For` entry (set
    /// this only behind a proxy that appends it).
    pub trust_forwarded_for: bool,
    /// Seconds to let in-flight requests finish after SIGTERM.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://127.0.0.1:8080".into(),
            data_dir: PathBuf::from("data"),
            trust_forwarded_for: false,
            shutdown_grace_secs: 20,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// Empty: an SQLite file in the data directory. `postgres://...` switches
    /// to PostgreSQL. May hold a password, so it is never printed.
    #[serde(serialize_with = "expose")]
    pub url: SecretString,
    pub max_connections: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from(String::new()),
            max_connections: 10,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct AuthSettings {
    /// Key that signs access tokens (at least 32 bytes). Empty: a random key
    /// is generated once and kept in `<data_dir>/token-secret`.
    #[serde(serialize_with = "expose")]
    pub token_secret: SecretString,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_days: u64,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Hashes computed at once; 0 means one per CPU.
    pub max_concurrent_hashes: usize,
    /// Failed logins per account within the window before it is locked out.
    pub account_max_failures: u32,
    /// Failed logins per client address within the window before it is locked out.
    pub address_max_failures: u32,
    pub failure_window_secs: u64,
    pub lockout_secs: u64,
    /// Account e-mails (verification, reset) one account may trigger per window.
    pub mail_per_account_per_hour: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            token_secret: SecretString::from(String::new()),
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_days: 30,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            max_concurrent_hashes: 0,
            account_max_failures: 5,
            address_max_failures: 50,
            failure_window_secs: 15 * 60,
            lockout_secs: 15 * 60,
            mail_per_account_per_hour: 5,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// Write `.eml` files to the outbox directory and log their links.
    #[default]
    File,
    Smtp,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTlsMode {
    None,
    #[default]
    Starttls,
    Tls,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct MailSettings {
    pub transport: MailTransport,
    pub from: String,
    /// Empty: `<data_dir>/outbox`.
    pub outbox_dir: PathBuf,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_tls: SmtpTlsMode,
    pub smtp_username: Option<String>,
    #[serde(serialize_with = "expose_option")]
    pub smtp_password: Option<SecretString>,
    pub smtp_timeout_secs: u64,
    /// Seconds between reads of the mail outbox (queueing a mail also wakes
    /// the sender).
    pub outbox_poll_secs: u64,
    /// Attempts before a mail is given up on (it stays in the outbox,
    /// marked dead, and is logged).
    pub max_attempts: u32,
    /// Seconds before the first retry; the wait doubles with each failure.
    pub retry_base_secs: u64,
    /// The longest wait between two attempts, in seconds.
    pub retry_max_secs: u64,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            transport: MailTransport::File,
            from: "Marketplace <no-reply@marketplace.localhost>".into(),
            outbox_dir: PathBuf::new(),
            smtp_host: "localhost".into(),
            smtp_port: 587,
            smtp_tls: SmtpTlsMode::Starttls,
            smtp_username: None,
            smtp_password: None,
            smtp_timeout_secs: 10,
            outbox_poll_secs: 5,
            max_attempts: 12,
            retry_base_secs: 5,
            retry_max_secs: 3600,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter (`info`, `gateway=debug,sqlx=warn`); `RUST_LOG` wins.
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            filter: "info,sqlx=warn".into(),
        }
    }
}

// Serialising settings only feeds figment's defaults; the values never
// reach a log because `Debug` on `SecretString` stays redacted.
fn expose<S: serde::Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose_secret())
}

fn expose_option<S: serde::Serializer>(
    secret: &Option<SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => s.serialize_some(secret.expose_secret()),
        None => s.serialize_none(),
    }
}

impl Settings {
    /// Defaults, then the TOML file if given (or `marketplace.toml` if it
    /// exists), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        match file {
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None => figment = figment.merge(Toml::file("marketplace.toml")),
        }
        figment
            .merge(Env::prefixed(ENV_PREFIX).split("__"))
            .extract()
            .map_err(Box::new)
    }

    /// Where the database lives: the configured URL, or the embedded SQLite file.
    pub fn database_url(&self) -> String {
        let url = self.database.url.expose_secret().trim();
        if url.is_empty() {
            format!(
                "sqlite://{}",
                self.server.data_dir.join("marketplace.db").display()
            )
        } else {
            url.to_string()
        }
    }

    pub fn media_dir(&self) -> PathBuf {
        or_in_data_dir(&self.media.dir, &self.server.data_dir, "media")
    }

    pub fn search_dir(&self) -> PathBuf {
        or_in_data_dir(&self.search.index_dir, &self.server.data_dir, "search")
    }

    pub fn outbox_dir(&self) -> PathBuf {
        or_in_data_dir(&self.mail.outbox_dir, &self.server.data_dir, "outbox")
    }
}

fn or_in_data_dir(configured: &Path, data_dir: &Path, name: &str) -> PathBuf {
    if configured.as_os_str().is_empty() {
        data_dir.join(name)
    } else {
        configured.to_path_buf()
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_marketplace() {
        let settings = Settings::default();
        assert_eq!(settings.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.database_url(), "sqlite://data/marketplace.db");
        assert_eq!(settings.outbox_dir(), PathBuf::from("data/outbox"));
        assert_eq!(settings.mail.transport, MailTransport::File);
    }

    #[test]
    fn environment_overrides_with_one_prefix() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("MARKETPLACE_SERVER__LISTEN", "0.0.0.0:9000");
            jail.set_env("MARKETPLACE_DATABASE__URL", "postgres://u:hunter2@db/m");
            jail.set_env("MARKETPLACE_LOG__FORMAT", "json");
            let settings = Settings::load(None).map_err(|e| *e)?;
            assert_eq!(settings.server.listen.to_string(), "0.0.0.0:9000");
            assert_eq!(settings.database_url(), "postgres://u:hunter2@db/m");
            assert_eq!(settings.log.format, LogFormat::Json);
            Ok(())
        });
    }

    #[test]
    fn a_file_sits_between_defaults_and_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "custom.toml",
                "[server]\nlisten = \"127.0.0.1:7000\"\n[mail]\ntransport = \"smtp\"\n",
            )?;
            jail.set_env("MARKETPLACE_SERVER__LISTEN", "127.0.0.1:7001");
            let settings = Settings::load(Some(Path::new("custom.toml"))).map_err(|e| *e)?;
            assert_eq!(settings.server.listen.to_string(), "127.0.0.1:7001");
            assert_eq!(settings.mail.transport, MailTransport::Smtp);
            Ok(())
        });
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("MARKETPLACE_DATABASE__URL", "postgres://u:hunter2@db/m");
            jail.set_env(
                "MARKETPLACE_AUTH__TOKEN_SECRET",
                "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t",
            );
            jail.set_env("MARKETPLACE_MAIL__SMTP_PASSWORD", "mailpass");
            let printed = format!("{:?}", Settings::load(None).map_err(|e| *e)?);
            assert!(!printed.contains("hunter2"));
            assert!(!printed.contains("s3cr3t"));
            assert!(!printed.contains("mailpass"));
            Ok(())
        });
    }

    #[test]
    fn sessions_can_live_in_dynamodb() {
        assert_eq!(Settings::default().sessions.backend, SessionBackend::Sql);
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "sessions.toml",
                "[sessions]\nbackend = \"dynamodb\"\ndynamodb_table = \"t\"\n",
            )?;
            jail.set_env(
                "MARKETPLACE_SESSIONS__DYNAMODB_SECRET_ACCESS_KEY",
                "dynopass",
            );
            let settings = Settings::load(Some(Path::new("sessions.toml"))).map_err(|e| *e)?;
            assert_eq!(settings.sessions.backend, SessionBackend::DynamoDb);
            assert_eq!(settings.sessions.dynamodb_table, "t");
            assert_eq!(settings.sessions.dynamodb_region, "us-east-1");
            assert!(!format!("{settings:?}").contains("dynopass"));
            Ok(())
        });
    }
}
