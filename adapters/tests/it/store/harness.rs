//! Fresh databases for the store suite: a SQLite file in a temporary
//! directory, a new PostgreSQL database that is dropped afterwards, or a
//! DynamoDB table on a `moto_server` of its own (sessions and reviews).

use std::future::Future;
use std::panic::resume_unwind;
use std::sync::Arc;

use adapters::aws::AwsConnection;
use adapters::dynamo::{DynamoReviewStore, DynamoSessionStore};
use adapters::sql::SqlStore;
use sqlx::{Connection, Executor, PgConnection};
use tempfile::TempDir;
use url::Url;

/// Where the PostgreSQL tests find a server they may create databases on.
pub const POSTGRES_URL_VAR: &str = "MARKETPLACE_TEST_POSTGRES_URL";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Pool size for test stores: enough for the concurrency scenarios to race.
const MAX_CONNECTIONS: u32 = 5;

/// Runs `scenario` against a fresh, migrated SQLite database file.
pub async fn run_sqlite<F, Fut>(scenario: F)
where
    F: FnOnce(SqlStore) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let dir = TempDir::new().expect("create a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let store = SqlStore::connect(&url, MAX_CONNECTIONS)
        .await
        .expect("open the sqlite database");
    assert_eq!(store.backend(), "sqlite");
    store.migrate().await.expect("migrate the sqlite database");

    let outcome = tokio::spawn(scenario(store.clone())).await;
    store.close().await;
    drop(dir);
    finish(outcome);
}

/// Runs `scenario` against a new, migrated PostgreSQL database, dropped
/// afterwards whatever the outcome. Fails, never skips, without a server.
pub async fn run_postgres<F, Fut>(scenario: F)
where
    F: FnOnce(SqlStore) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let server =
        std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string());
    let mut admin = PgConnection::connect(&server).await.unwrap_or_else(|e| {
        panic!(
            "the postgres store tests need a PostgreSQL server at {server} \
             (set {POSTGRES_URL_VAR} to another server): {e}"
        )
    });
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await
        .unwrap_or_else(|e| panic!("cannot create database {name} on {server}: {e}"));

    let mut url = Url::parse(&server).expect("a valid postgres url");
    url.set_path(&format!("/{name}"));
    let outcome = match SqlStore::connect(url.as_str(), MAX_CONNECTIONS).await {
        Ok(store) => {
            assert_eq!(store.backend(), "postgres");
            let outcome = match store.migrate().await {
                Ok(()) => tokio::spawn(scenario(store.clone())).await,
                Err(e) => Ok(Err(anyhow::anyhow!("migrate the postgres database: {e}"))),
            };
            store.close().await;
            outcome
        }
        Err(e) => Ok(Err(anyhow::anyhow!("connect to database {name}: {e}"))),
    };

    admin
        .execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
        .await
        .unwrap_or_else(|e| panic!("cannot drop database {name}: {e}"));
    admin.close().await.ok();
    finish(outcome);
}

/// Runs `scenario` against a new DynamoDB sessions table on a fresh
/// `moto_server` (killed afterwards), with the users in a fresh SQLite
/// database. Fails, never skips, without `moto_server`.
pub async fn run_dynamodb<F, Fut>(scenario: F)
where
    F: FnOnce(SqlStore, DynamoSessionStore) -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    with_moto(|connection, users| async move {
        let table = format!("sessions-{}", uuid::Uuid::new_v4().simple());
        let sessions = DynamoSessionStore::new(&connection, &table).await?;
        sessions.ensure_table().await?;
        // Creating it again finds it.
        sessions.ensure_table().await?;
        scenario(users, sessions).await
    })
    .await;
}

/// Runs `scenario` against a new DynamoDB reviews table on a fresh
/// `moto_server` (killed afterwards), with the users and orders in a fresh
/// SQLite database that the review store checks orders against. Fails,
/// never skips, without `moto_server`.
pub async fn run_dynamodb_reviews<F, Fut>(scenario: F)
where
    F: FnOnce(SqlStore, DynamoReviewStore) -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    with_moto(|connection, sql| async move {
        let table = format!("reviews-{}", uuid::Uuid::new_v4().simple());
        let reviews = DynamoReviewStore::new(&connection, &table).await?;
        reviews.ensure_table().await?;
        // Creating it again finds it.
        reviews.ensure_table().await?;
        let reviews = reviews.with_orders(Arc::new(sql.clone()));
        scenario(sql, reviews).await
    })
    .await;
}

/// Runs `scenario` with a connection to a fresh `moto_server` (serving one
/// request at a time, killed afterwards) and a fresh, migrated SQLite
/// database for what stays relational.
async fn with_moto<F, Fut>(scenario: F)
where
    F: FnOnce(AwsConnection, SqlStore) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let moto = crate::media::MotoServer::start_serial();
    let connection = AwsConnection {
        region: "us-east-1".into(),
        endpoint: Some(moto.endpoint()),
        access_key_id: Some("testing".into()),
        secret_access_key: Some("testing-secret".to_owned().into()),
    };
    let dir = TempDir::new().expect("create a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let sql = SqlStore::connect(&url, MAX_CONNECTIONS)
        .await
        .expect("open the sqlite database");
    sql.migrate().await.expect("migrate the sqlite database");

    let outcome = tokio::spawn(scenario(connection, sql.clone())).await;
    sql.close().await;
    drop(dir);
    drop(moto);
    finish(outcome);
}

/// Reports the scenario's failure (an error or a panic) after cleaning up.
fn finish(outcome: Result<anyhow::Result<()>, tokio::task::JoinError>) {
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("scenario failed: {e:#}"),
        Err(e) if e.is_panic() => resume_unwind(e.into_panic()),
        Err(e) => panic!("scenario did not finish: {e}"),
    }
}
