//! `SessionStore` in DynamoDB: login sessions and their rotating refresh
//! tokens in one table, for deployments that keep sessions out of the
//! relational database.
//!
//! # Table layout
//!
//! One table, partition key `pk` and sort key `sk` (both strings), billed
//! per request, with one global secondary index `gsi1` (`gsi1pk`, `gsi1sk`,
//! every attribute projected):
//!
//! | item | `pk` | `sk` | attributes |
//! |---|---|---|---|
//! | session | `SESSION#<session id>` | `SESSION` | `session_id`, `user_id`, `created_at`, `last_used_at`, `expires_at`, `revoked_at` (absent while open), `user_agent`, `ip` (absent when unknown), `token_hash` (the current refresh token), `version`, `gsi1pk = USER#<user id>`, `gsi1sk = <created_at, RFC 3339 with microseconds>#<session id>` |
//! | refresh token | `TOKEN#<SHA-256 of the token>` | `TOKEN` | `session_id`, `user_id`, `state` (`current` or `consumed`), `created_at`, `consumed_at` |
//!
//! Times are numbers, microseconds since the epoch, as precise as the SQL
//! store keeps them. A consumed token item stays, so presenting it again is
//! recognised as reuse (and revokes its session, as in the SQL store).
//! `sessions_for_user` queries `gsi1` newest first (by creation time, then
//! id, like the SQL store); `revoke_all_for_user` queries it and revokes each
//! open session with a conditional update.
//!
//! # Atomicity
//!
//! A rotation is one `TransactWriteItems`: the presented token must still
//! be `current`, the session unrevoked, unexpired and at the version read;
//! the token becomes `consumed`, the next token item is put (only if new),
//! and the session takes the next token hash, the new expiry and version + 1.
//! Of two rotations with one token, one transaction commits; the other is
//! cancelled, reads again, finds the token consumed and reports reuse,
//! exactly as the SQL store answers the loser.
//!
//! Index reads are eventually consistent on AWS: a session opened a moment
//! ago may be missing from `sessions_for_user`, and `revoke_all_for_user`
//! may miss it. Reads by session id or token are strongly consistent.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, IndexStatus,
    KeySchemaElement, KeyType, Projection, ProjectionType, Put, ReturnValue, ScalarAttributeType,
    TableStatus, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, SecondsFormat, Utc};
use domain::auth::{NewSession, Rotation, Session};
use domain::ids::{SessionId, UserId};
use domain::ports::{AccountStore, SessionStore, StoreError};
use uuid::Uuid;

use crate::aws::AwsConnection;

/// `ReviewStore` in its own DynamoDB table.
pub mod reviews;

pub use reviews::DynamoReviewStore;

/// The secondary index on user id.
const USER_INDEX: &str = "gsi1";
const SESSION_SK: &str = "SESSION";
const TOKEN_SK: &str = "TOKEN";
const CURRENT: &str = "current";
const CONSUMED: &str = "consumed";
/// How often a rotation re-reads after its transaction was cancelled by a
/// concurrent writer; each retry sees the winner's write, so one suffices in
/// practice.
const ROTATION_ATTEMPTS: u32 = 8;
/// How long `ensure_table` waits for the table and its index to be active.
const TABLE_READY_WITHIN: Duration = Duration::from_secs(120);

pub(crate) type Item = HashMap<String, AttributeValue>;

/// Sessions in one DynamoDB table (see the module documentation).
#[derive(Clone)]
pub struct DynamoSessionStore {
    client: Client,
    table: String,
    /// When set, a session for an account that does not exist is refused
    /// with `NotFound`, as the SQL store's foreign key does.
    accounts: Option<Arc<dyn AccountStore>>,
}

impl fmt::Debug for DynamoSessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoSessionStore")
            .field("table", &self.table)
            .field("checks_accounts", &self.accounts.is_some())
            .finish_non_exhaustive()
    }
}

pub(crate) fn backend(what: &str, e: impl fmt::Display) -> StoreError {
    StoreError::Backend(format!("{what}: {e}"))
}

pub(crate) fn sdk_error<E, R>(what: &str, e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: fmt::Debug,
{
    backend(what, DisplayErrorContext(e))
}

pub(crate) fn built<T>(
    what: &str,
    result: Result<T, aws_sdk_dynamodb::error::BuildError>,
) -> Result<T, StoreError> {
    result.map_err(|e| backend(what, e))
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

fn session_pk(id: SessionId) -> String {
    format!("SESSION#{}", id.as_uuid())
}

fn token_pk(hash: &str) -> String {
    format!("TOKEN#{hash}")
}

fn user_pk(id: UserId) -> String {
    format!("USER#{}", id.as_uuid())
}

/// Sorts as the SQL store orders: by creation time (fixed-width RFC 3339,
/// microseconds), then by id (a UUID's text sorts as its bytes).
fn user_sk(created_at: DateTime<Utc>, id: SessionId) -> String {
    format!(
        "{}#{}",
        created_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        id.as_uuid()
    )
}

pub(crate) fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value),
        _ => Err(backend(
            "reading a stored item",
            format!("no text attribute {name}"),
        )),
    }
}

pub(crate) fn get_opt_s(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    }
}

pub(crate) fn get_n(item: &Item, name: &str) -> Result<i64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value
            .parse()
            .map_err(|e| backend("reading a stored item", format!("{name}: {e}"))),
        _ => Err(backend(
            "reading a stored item",
            format!("no number attribute {name}"),
        )),
    }
}

pub(crate) fn get_time(item: &Item, name: &str) -> Result<DateTime<Utc>, StoreError> {
    let value = get_n(item, name)?;
    DateTime::from_timestamp_micros(value)
        .ok_or_else(|| backend("reading a stored item", format!("{name} out of range")))
}

pub(crate) fn get_uuid(item: &Item, name: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(get_s(item, name)?)
        .map_err(|e| backend("reading a stored item", format!("{name}: {e}")))
}

/// A stored session with what a rotation checks.
struct SessionItem {
    session: Session,
    version: i64,
}

fn session_from(item: &Item) -> Result<SessionItem, StoreError> {
    let revoked_at = if item.contains_key("revoked_at") {
        Some(get_time(item, "revoked_at")?)
    } else {
        None
    };
    Ok(SessionItem {
        session: Session {
            id: SessionId::from_uuid(get_uuid(item, "session_id")?),
            user_id: UserId::from_uuid(get_uuid(item, "user_id")?),
            created_at: get_time(item, "created_at")?,
            last_used_at: get_time(item, "last_used_at")?,
            expires_at: get_time(item, "expires_at")?,
            revoked_at,
            user_agent: get_opt_s(item, "user_agent"),
            ip: get_opt_s(item, "ip"),
        },
        version: get_n(item, "version")?,
    })
}

/// A stored refresh token.
struct TokenItem {
    session_id: SessionId,
    consumed: bool,
}

fn token_from(item: &Item) -> Result<TokenItem, StoreError> {
    Ok(TokenItem {
        session_id: SessionId::from_uuid(get_uuid(item, "session_id")?),
        consumed: get_s(item, "state")? == CONSUMED,
    })
}

/// Why a transaction was cancelled, one code per action (`None`,
/// `ConditionalCheckFailed`, `TransactionConflict`, ...).
pub(crate) fn cancellation_codes(
    e: &SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError>,
) -> Option<Vec<String>> {
    match e {
        SdkError::ServiceError(service) => match service.err() {
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(
                cancelled,
            ) => Some(
                cancelled
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().unwrap_or("None").to_string())
                    .collect(),
            ),
            _ => None,
        },
        _ => None,
    }
}

/// A client for `table` on `connection`; nothing is sent yet.
pub(crate) async fn client(connection: &AwsConnection, table: &str) -> Result<Client, StoreError> {
    if table.is_empty() {
        return Err(backend("DynamoDB settings", "the table name is empty"));
    }
    let shared = connection
        .sdk_config()
        .await
        .map_err(|e| backend("DynamoDB settings", e))?;
    Ok(Client::new(&shared))
}

/// Creates `table` unless it exists, then waits (bounded) until it and its
/// indexes are active. The table has the string keys `pk` and `sk` and is
/// billed per request; each of `indexes` is a global secondary index
/// `<index>` on the string keys `<index>pk` and `<index>sk`, projecting
/// every attribute. `label` names the table in errors and logs.
pub(crate) async fn ensure_table(
    client: &Client,
    table: &str,
    label: &str,
    indexes: &[&str],
) -> Result<(), StoreError> {
    match client.describe_table().table_name(table).send().await {
        Ok(_) => {}
        Err(SdkError::ServiceError(e)) if e.err().is_resource_not_found_exception() => {
            create_table(client, table, label, indexes).await?;
        }
        Err(e) => return Err(sdk_error(&format!("describing the {label}"), e)),
    }
    wait_until_active(client, table, label, indexes).await
}

async fn create_table(
    client: &Client,
    table: &str,
    label: &str,
    indexes: &[&str],
) -> Result<(), StoreError> {
    let what = format!("creating the {label}");
    let what = what.as_str();
    let attribute = |name: String| {
        built(
            what,
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build(),
        )
    };
    let key_element = |name: String, kind: KeyType| {
        built(
            what,
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build(),
        )
    };
    let mut create = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk".into())?)
        .attribute_definitions(attribute("sk".into())?)
        .key_schema(key_element("pk".into(), KeyType::Hash)?)
        .key_schema(key_element("sk".into(), KeyType::Range)?);
    for index in indexes {
        let (pk, sk) = (format!("{index}pk"), format!("{index}sk"));
        create = create
            .attribute_definitions(attribute(pk.clone())?)
            .attribute_definitions(attribute(sk.clone())?)
            .global_secondary_indexes(built(
                what,
                GlobalSecondaryIndex::builder()
                    .index_name(*index)
                    .key_schema(key_element(pk, KeyType::Hash)?)
                    .key_schema(key_element(sk, KeyType::Range)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build(),
            )?);
    }
    match create.send().await {
        Ok(_) => {
            tracing::info!(table = %table, "created the {label}");
            Ok(())
        }
        // Created meanwhile by another instance.
        Err(SdkError::ServiceError(e)) if e.err().is_resource_in_use_exception() => Ok(()),
        Err(e) => Err(sdk_error(what, e)),
    }
}

async fn wait_until_active(
    client: &Client,
    table: &str,
    label: &str,
    indexes: &[&str],
) -> Result<(), StoreError> {
    let what = format!("the {label}");
    let deadline = tokio::time::Instant::now() + TABLE_READY_WITHIN;
    loop {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("describing the {label}"), e))?;
        let described = described.table();
        let table_active = described.and_then(|t| t.table_status()) == Some(&TableStatus::Active);
        let present = described
            .map(|t| t.global_secondary_indexes())
            .unwrap_or_default();
        let status = |name: &str| {
            present
                .iter()
                .find(|index| index.index_name() == Some(name))
                .map(|index| index.index_status())
        };
        if table_active {
            if let Some(missing) = indexes.iter().find(|name| status(name).is_none()) {
                return Err(backend(
                    &what,
                    format!("{table} exists without the index {missing}"),
                ));
            }
        }
        let indexes_active = indexes
            .iter()
            .all(|name| status(name) == Some(Some(&IndexStatus::Active)));
        if table_active && indexes_active {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(backend(
                &what,
                format!("{table} not active after {TABLE_READY_WITHIN:?}"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

impl DynamoSessionStore {
    /// Builds the client. Nothing is sent yet: call [`Self::ensure_table`]
    /// at start to create the table or find a wrong setting.
    pub async fn new(connection: &AwsConnection, table: &str) -> Result<Self, StoreError> {
        Ok(Self {
            client: client(connection, table).await?,
            table: table.to_string(),
            accounts: None,
        })
    }

    /// Refuses sessions for accounts `accounts` does not know (`NotFound`),
    /// as the relational store's foreign key does.
    pub fn with_accounts(mut self, accounts: Arc<dyn AccountStore>) -> Self {
        self.accounts = Some(accounts);
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table and its user index unless the table exists, then
    /// waits (bounded) until both are active.
    pub async fn ensure_table(&self) -> Result<(), StoreError> {
        ensure_table(&self.client, &self.table, "sessions table", &[USER_INDEX]).await
    }

    async fn get(&self, pk: String, sk: &str, what: &str) -> Result<Option<Item>, StoreError> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(what, e))?;
        Ok(got.item)
    }

    async fn session_item(&self, id: SessionId) -> Result<Option<SessionItem>, StoreError> {
        self.get(session_pk(id), SESSION_SK, "reading a session")
            .await?
            .as_ref()
            .map(session_from)
            .transpose()
    }

    async fn token_item(&self, hash: &str) -> Result<Option<TokenItem>, StoreError> {
        self.get(token_pk(hash), TOKEN_SK, "reading a refresh token")
            .await?
            .as_ref()
            .map(token_from)
            .transpose()
    }

    /// Sets `revoked_at` unless it is set already; the session as it now
    /// is, or `None` if there is no such session.
    async fn revoke_session(
        &self,
        id: SessionId,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, StoreError> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(session_pk(id), SESSION_SK)))
            .update_expression("SET revoked_at = if_not_exists(revoked_at, :now)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", n(micros(now)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match updated {
            Ok(output) => match output.attributes {
                Some(item) => Ok(Some(session_from(&item)?.session)),
                None => Err(backend("revoking a session", "no attributes returned")),
            },
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(None)
            }
            Err(e) => Err(sdk_error("revoking a session", e)),
        }
    }

    /// Every session item of the user, newest first.
    async fn user_sessions(&self, user_id: UserId) -> Result<Vec<Session>, StoreError> {
        let mut sessions = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(USER_INDEX)
                .key_condition_expression("gsi1pk = :user")
                .expression_attribute_values(":user", s(user_pk(user_id)))
                .scan_index_forward(false)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("listing a user's sessions", e))?;
            for item in page.items() {
                sessions.push(session_from(item)?.session);
            }
            match page.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => return Ok(sessions),
            }
        }
    }

    /// One attempt at consuming a current token; `None` when a concurrent
    /// write cancelled the transaction and the caller should read again.
    async fn try_rotate(
        &self,
        presented_hash: &str,
        stored: SessionItem,
        next_token_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Option<Rotation>, StoreError> {
        let what = "rotating a refresh token";
        let SessionItem { session, version } = stored;
        let (now_us, expires_us) = (micros(now), micros(expires_at));
        let consume = built(
            what,
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(token_pk(presented_hash), TOKEN_SK)))
                .update_expression("SET #state = :consumed, consumed_at = :now")
                .condition_expression("attribute_exists(pk) AND #state = :current")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":consumed", s(CONSUMED))
                .expression_attribute_values(":current", s(CURRENT))
                .expression_attribute_values(":now", n(now_us))
                .build(),
        )?;
        let next = built(
            what,
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(self.token_item_for(
                    next_token_hash,
                    session.id,
                    session.user_id,
                    now,
                )))
                .condition_expression("attribute_not_exists(pk)")
                .build(),
        )?;
        let extend = built(
            what,
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(session_pk(session.id), SESSION_SK)))
                .update_expression(
                    "SET last_used_at = :now, expires_at = :expires, token_hash = :next, \
                     #version = :next_version",
                )
                .condition_expression(
                    "#version = :version AND attribute_not_exists(revoked_at) \
                     AND expires_at > :now",
                )
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":now", n(now_us))
                .expression_attribute_values(":expires", n(expires_us))
                .expression_attribute_values(":next", s(next_token_hash))
                .expression_attribute_values(":version", n(version))
                .expression_attribute_values(":next_version", n(version + 1))
                .build(),
        )?;
        let written = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(consume).build())
            .transact_items(TransactWriteItem::builder().put(next).build())
            .transact_items(TransactWriteItem::builder().update(extend).build())
            .send()
            .await;
        match written {
            Ok(_) => Ok(Some(Rotation::Rotated(Session {
                last_used_at: DateTime::from_timestamp_micros(now_us).unwrap_or(now),
                expires_at: DateTime::from_timestamp_micros(expires_us).unwrap_or(expires_at),
                ..session
            }))),
            Err(e) => match cancellation_codes(&e) {
                // The next token exists already: SHA-256 of a fresh random
                // secret never collides, so this is a bug, not a race.
                Some(codes)
                    if codes.get(1).map(String::as_str) == Some("ConditionalCheckFailed")
                        && codes.first().map(String::as_str) != Some("ConditionalCheckFailed") =>
                {
                    Err(backend(what, "the next refresh token is already stored"))
                }
                Some(codes) => {
                    tracing::debug!(?codes, "rotation cancelled, reading again");
                    Ok(None)
                }
                None => Err(sdk_error(what, e)),
            },
        }
    }

    fn token_item_for(
        &self,
        hash: &str,
        session_id: SessionId,
        user_id: UserId,
        created_at: DateTime<Utc>,
    ) -> Item {
        HashMap::from([
            ("pk".to_string(), s(token_pk(hash))),
            ("sk".to_string(), s(TOKEN_SK)),
            (
                "session_id".to_string(),
                s(session_id.as_uuid().to_string()),
            ),
            ("user_id".to_string(), s(user_id.as_uuid().to_string())),
            ("state".to_string(), s(CURRENT)),
            ("created_at".to_string(), n(micros(created_at))),
        ])
    }
}

#[async_trait]
impl SessionStore for DynamoSessionStore {
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(session_id = %session.id, user_id = %session.user_id),
        err
    )]
    async fn create_session(&self, session: &NewSession) -> Result<Session, StoreError> {
        if let Some(accounts) = &self.accounts {
            if accounts.user_by_id(session.user_id).await?.is_none() {
                return Err(StoreError::NotFound);
            }
        }
        let what = "opening a session";
        let created_us = micros(session.created_at);
        let expires_us = micros(session.expires_at);
        let mut item = HashMap::from([
            ("pk".to_string(), s(session_pk(session.id))),
            ("sk".to_string(), s(SESSION_SK)),
            (
                "session_id".to_string(),
                s(session.id.as_uuid().to_string()),
            ),
            (
                "user_id".to_string(),
                s(session.user_id.as_uuid().to_string()),
            ),
            ("created_at".to_string(), n(created_us)),
            ("last_used_at".to_string(), n(created_us)),
            ("expires_at".to_string(), n(expires_us)),
            ("token_hash".to_string(), s(&session.refresh_token_hash)),
            ("version".to_string(), n(0)),
            ("gsi1pk".to_string(), s(user_pk(session.user_id))),
        ]);
        let created_at = DateTime::from_timestamp_micros(created_us)
            .ok_or_else(|| backend(what, "created_at out of range"))?;
        item.insert("gsi1sk".to_string(), s(user_sk(created_at, session.id)));
        if let Some(agent) = &session.user_agent {
            item.insert("user_agent".to_string(), s(agent));
        }
        if let Some(ip) = &session.ip {
            item.insert("ip".to_string(), s(ip));
        }
        let stored = session_from(&item)?.session;
        let put_session = built(
            what,
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build(),
        )?;
        let put_token = built(
            what,
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(self.token_item_for(
                    &session.refresh_token_hash,
                    session.id,
                    session.user_id,
                    session.created_at,
                )))
                .condition_expression("attribute_not_exists(pk)")
                .build(),
        )?;
        self.client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put_session).build())
            .transact_items(TransactWriteItem::builder().put(put_token).build())
            .send()
            .await
            .map_err(|e| match cancellation_codes(&e) {
                Some(codes) => backend(what, format!("cancelled: {codes:?}")),
                None => sdk_error(what, e),
            })?;
        Ok(stored)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(session_id = %id), err(level = "debug"))]
    async fn session(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        Ok(self.session_item(id).await?.map(|stored| stored.session))
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn rotate(
        &self,
        presented_hash: &str,
        next_token_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Rotation, StoreError> {
        let now_stored = micros(now);
        for attempt in 0..ROTATION_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
            }
            let Some(token) = self.token_item(presented_hash).await? else {
                return Ok(Rotation::Invalid);
            };
            if token.consumed {
                // A consumed token presented again has leaked: its whole
                // session is revoked.
                return Ok(match self.revoke_session(token.session_id, now).await? {
                    Some(session) => {
                        tracing::warn!(
                            session_id = %session.id,
                            user_id = %session.user_id,
                            "refresh token reused, session revoked"
                        );
                        Rotation::Reused {
                            session_id: session.id,
                            user_id: session.user_id,
                        }
                    }
                    None => Rotation::Invalid,
                });
            }
            let Some(stored) = self.session_item(token.session_id).await? else {
                return Ok(Rotation::Invalid);
            };
            if stored.session.revoked_at.is_some()
                || micros(stored.session.expires_at) <= now_stored
            {
                // Revoked or expired: leave the token as it was.
                return Ok(Rotation::Invalid);
            }
            if let Some(rotation) = self
                .try_rotate(presented_hash, stored, next_token_hash, now, expires_at)
                .await?
            {
                return Ok(rotation);
            }
        }
        Err(backend(
            "rotating a refresh token",
            format!("still contended after {ROTATION_ATTEMPTS} attempts"),
        ))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(session_id = %id), err(level = "debug"))]
    async fn revoke(&self, id: SessionId, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.revoke_session(id, now).await.map(|_| ())
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn revoke_by_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionId>, StoreError> {
        let Some(token) = self.token_item(token_hash).await? else {
            return Ok(None);
        };
        Ok(self
            .revoke_session(token.session_id, now)
            .await?
            .map(|session| session.id))
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(user_id = %user_id, except = ?except),
        err
    )]
    async fn revoke_all_for_user(
        &self,
        user_id: UserId,
        except: Option<SessionId>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut revoked = 0;
        for session in self.user_sessions(user_id).await? {
            let open = session.revoked_at.is_none() && micros(session.expires_at) > micros(now);
            if Some(session.id) == except || !open {
                continue;
            }
            let updated = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(session_pk(session.id), SESSION_SK)))
                .update_expression("SET revoked_at = :now")
                .condition_expression(
                    "attribute_exists(pk) AND attribute_not_exists(revoked_at) \
                     AND expires_at > :now",
                )
                .expression_attribute_values(":now", n(micros(now)))
                .send()
                .await;
            match updated {
                Ok(_) => revoked += 1,
                // Revoked or rotated into expiry meanwhile: not ours to count.
                Err(SdkError::ServiceError(e))
                    if e.err().is_conditional_check_failed_exception() => {}
                Err(e) => return Err(sdk_error("revoking a user's sessions", e)),
            }
        }
        Ok(revoked)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id), err(level = "debug"))]
    async fn sessions_for_user(&self, user_id: UserId) -> Result<Vec<Session>, StoreError> {
        self.user_sessions(user_id).await
    }
}
