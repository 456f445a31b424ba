//! The harness: a fresh database per test (a SQLite file in a temporary
//! directory, or a new PostgreSQL database dropped afterwards), the real
//! server started with [`gateway::run`] on port 0, a manual clock, the real
//! file mailer, and typed client helpers. Media go to the local store, or
//! to S3 on a `moto_server` started for the test (`on S3`). A test can
//! restart its server on the same database and data directory
//! ([`TestApp::restart`]). Waits are bounded polls ([`eventually`]).

use std::collections::HashSet;
use std::future::Future;
use std::panic::resume_unwind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound as _, TimeDelta, Utc};
use domain::ids::UserId;
use domain::ports::Clock;
use gateway::config::{MediaBackend, Settings};
use gateway::AppState;
use reqwest::header::HeaderMap;
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{json, Value};
use sqlx::{Connection as _, Executor as _, PgConnection};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Generates `mod sqlite` and `mod postgres`, each with one test per
/// scenario. A scenario is `async fn name(app: TestApp)` in the invoking
/// module; `name with configure` first applies `fn configure(&mut Settings)`
/// to the test settings, and `name on S3` stores media in S3 on a
/// `moto_server` started for the test instead of the local directory
/// (both may be given: `name with configure on S3`).
macro_rules! backend_tests {
    ($($name:ident $(with $configure:ident)? $(on $media:ident)?),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    crate::helpers::run_scenario(
                        crate::helpers::Backend::Sqlite,
                        crate::helpers::media_of(&[$(crate::helpers::Media::$media)?]),
                        &[$(super::$configure as crate::helpers::Configure)?],
                        super::$name,
                    )
                    .await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    crate::helpers::run_scenario(
                        crate::helpers::Backend::Postgres,
                        crate::helpers::media_of(&[$(crate::helpers::Media::$media)?]),
                        &[$(super::$configure as crate::helpers::Configure)?],
                        super::$name,
                    )
                    .await;
                }
            )*
        }
    };
}

/// Where the PostgreSQL tests find a server they may create databases on.
pub const POSTGRES_URL_VAR: &str = "MARKETPLACE_TEST_POSTGRES_URL";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The password every helper-made account has.
pub const PASSWORD: &str = "correct horse battery staple";

/// `auth.account_max_failures` in the test settings.
pub const ACCOUNT_MAX_FAILURES: u32 = 3;

/// How long a mail may take to appear in the outbox.
const MAIL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server may take to stop after its shutdown signal.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Changes to the test settings before the server starts.
pub type Configure = fn(&mut Settings);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the server keeps gig media.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    /// The embedded default: files under the data directory.
    Local,
    /// A bucket (unique to the test) on a `moto_server` started for the test.
    S3,
}

/// The media store a `backend_tests!` entry asks for: local unless `on S3`.
pub fn media_of(chosen: &[Media]) -> Media {
    chosen.first().copied().unwrap_or(Media::Local)
}

/// A `moto_server` (PyPI `moto[server]`, from `MARKETPLACE_MOTO_SERVER` or
/// `<workspace>/.venv-services/bin`, where `scripts/test.sh` installs it) on
/// a free loopback port; killed on drop. Fails, never skips, when the
/// executable is missing.
pub struct MotoServer(testkit::Service);

impl MotoServer {
    /// Starts it and waits (bounded) until it accepts connections.
    pub fn start() -> Self {
        Self(testkit::moto_server())
    }

    /// One request at a time, for DynamoDB transactions that race (see
    /// [`testkit::moto_server_serial`]).
    pub fn start_serial() -> Self {
        Self(testkit::moto_server_serial())
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.0.port())
    }

    /// Points the media settings at a new bucket on this server.
    fn configure(&self, settings: &mut Settings) {
        let media = &mut settings.media;
        media.backend = MediaBackend::S3;
        media.s3_endpoint = self.endpoint();
        media.s3_force_path_style = true;
        media.s3_bucket = format!("media-{}", Uuid::new_v4().simple());
        media.s3_region = "us-east-1".into();
        media.s3_access_key_id = "testing".into();
        media.s3_secret_access_key = Some(SecretString::from("testing-secret".to_string()));
    }
}

/// A clock that only moves when a test moves it.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// Starts at the current second, so JWT timestamps (whole seconds) are exact.
    pub fn starting_now() -> Self {
        Self {
            now: Mutex::new(Utc::now().trunc_subsecs(0)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, DateTime<Utc>> {
        self.now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn advance(&self, by: TimeDelta) {
        let mut now = self.lock();
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
}

/// The settings every test starts from: everything under `dir`, cheap
/// argon2, a small per-account login limit.
pub fn test_settings(dir: &Path, database_url: &str, public_url: &str) -> Settings {
    let mut settings = Settings::default();
    settings.server.data_dir = dir.join("data");
    settings.server.public_url = public_url.to_string();
    settings.server.shutdown_grace_secs = 5;
    settings.database.url = SecretString::from(database_url.to_string());
    settings.database.max_connections = 5;
    settings.auth.argon2_memory_kib = 1024;
    settings.auth.argon2_iterations = 1;
    settings.auth.argon2_parallelism = 1;
    settings.auth.account_max_failures = ACCOUNT_MAX_FAILURES;
    settings.mail.outbox_dir = dir.join("outbox");
    settings
}

/// Logs to stderr when `TEST_LOG` is set (`TEST_LOG=1 RUST_LOG=debug`).
fn init_logging() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            gateway::telemetry::init(&Settings::default().log);
        }
    });
}

/// A database that exists for one test.
enum TestDatabase {
    /// The embedded default: an SQLite file in the data directory.
    Sqlite,
    Postgres {
        admin: PgConnection,
        name: String,
        url: String,
    },
}

impl TestDatabase {
    async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self::Sqlite,
            Backend::Postgres => {
                let server = std::env::var(POSTGRES_URL_VAR)
                    .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string());
                let mut admin = PgConnection::connect(&server).await.unwrap_or_else(|e| {
                    panic!(
                        "the postgres tests need a PostgreSQL server at {server} \
                         (set {POSTGRES_URL_VAR} to another one): {e}"
                    )
                });
                let name = format!("test_{}", Uuid::new_v4().simple());
                admin
                    .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
                    .await
                    .unwrap_or_else(|e| panic!("cannot create database {name} on {server}: {e}"));
                let mut url = reqwest::Url::parse(&server)
                    .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is not a valid URL: {e}"));
                url.set_path(&format!("/{name}"));
                Self::Postgres {
                    admin,
                    name,
                    url: url.to_string(),
                }
            }
        }
    }

    /// Empty for SQLite: the settings then point at the data directory.
    fn url(&self) -> &str {
        match self {
            Self::Sqlite => "",
            Self::Postgres { url, .. } => url,
        }
    }

    async fn drop_database(self) {
        if let Self::Postgres {
            mut admin, name, ..
        } = self
        {
            admin
                .execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
                .await
                .unwrap_or_else(|e| panic!("cannot drop database {name}: {e}"));
            admin.close().await.ok();
        }
    }
}

/// Starts a server on a fresh database, runs `scenario`, then stops the
/// server and drops the database whatever the outcome, and reports the
/// scenario's panic.
pub async fn run_scenario<F, Fut>(
    backend: Backend,
    media: Media,
    configure: &[Configure],
    scenario: F,
) where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    init_logging();
    let app = spawn_app_on(backend, media, configure).await;
    finish_scenario(app, scenario).await;
}

/// Runs `scenario` on `app`, then stops the server and drops the database
/// whatever the outcome, and reports the scenario's panic.
async fn finish_scenario<F, Fut>(app: TestApp, scenario: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let teardown = app.teardown.clone();
    let outcome = tokio::spawn(scenario(app)).await;
    let stopped = teardown.run().await;
    match outcome {
        Ok(()) => {}
        Err(e) if e.is_panic() => resume_unwind(e.into_panic()),
        Err(e) => panic!("scenario did not finish: {e}"),
    }
    if let Some(Err(e)) = stopped {
        panic!("the server failed: {e:#}");
    }
}

/// Starts a server on a fresh database of `backend` with the test settings.
/// Call [`TestApp::teardown`] at the end, or the PostgreSQL database stays.
#[allow(dead_code)]
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

/// [`spawn_app`], with changes to the test settings.
pub async fn spawn_app_with(backend: Backend, configure: &[Configure]) -> TestApp {
    spawn_app_on(backend, Media::Local, configure).await
}

/// [`spawn_app_with`], with media in the store `media` chooses.
pub async fn spawn_app_on(backend: Backend, media: Media, configure: &[Configure]) -> TestApp {
    spawn_app_configured(backend, media, |settings| {
        for configure in configure {
            configure(settings);
        }
    })
    .await
}

/// Starts a server with media in `media`'s store and the test settings as
/// `change` leaves them.
async fn spawn_app_configured(
    backend: Backend,
    media: Media,
    change: impl FnOnce(&mut Settings),
) -> TestApp {
    // Before the database, so that a missing moto_server leaves none behind.
    let moto = match media {
        Media::Local => None,
        Media::S3 => Some(MotoServer::start()),
    };
    let dir = TempDir::new().expect("create a temporary directory");
    let database = TestDatabase::create(backend).await;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a port on 127.0.0.1");
    let address = format!(
        "http://{}",
        listener.local_addr().expect("the listener's address")
    );
    let mut settings = test_settings(dir.path(), database.url(), &address);
    if let Some(moto) = &moto {
        moto.configure(&mut settings);
    }
    change(&mut settings);
    let teardown = Arc::new(Teardown {
        shutdown: Mutex::new(None),
        task: Mutex::new(None),
        database: Mutex::new(Some(database)),
        dir: Mutex::new(Some(dir)),
        moto: Mutex::new(moto),
    });
    start(
        backend,
        listener,
        settings,
        Arc::new(ManualClock::starting_now()),
        teardown,
        HashSet::new(),
    )
    .await
}

/// Builds the state from `settings` and serves it on `listener`; the
/// shutdown handle and the server task go into `teardown`.
async fn start(
    backend: Backend,
    listener: TcpListener,
    settings: Settings,
    clock: Arc<ManualClock>,
    teardown: Arc<Teardown>,
    seen_mail: HashSet<PathBuf>,
) -> TestApp {
    let address = format!(
        "http://{}",
        listener.local_addr().expect("the listener's address")
    );
    let outbox = settings.outbox_dir();
    let mut state = AppState::build_with_clock(settings, clock.clone())
        .await
        .expect("build the application state");
    assert_eq!(
        state.store.backend(),
        match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    );
    state.clock = clock.clone();

    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(gateway::run(listener, state.clone(), async move {
        // A dropped sender stops the server too.
        let _ = shutdown_rx.await;
    }));
    *lock(&teardown.shutdown) = Some(shutdown_tx);
    *lock(&teardown.task) = Some(task);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("build the http client");
    TestApp {
        address,
        client,
        state,
        clock,
        outbox,
        backend,
        teardown,
        seen_mail: Mutex::new(seen_mail),
    }
}

/// What a test started and must clean up, shared by the test and the harness.
pub struct Teardown {
    shutdown: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<JoinHandle<anyhow::Result<()>>>>,
    database: Mutex<Option<TestDatabase>>,
    dir: Mutex<Option<TempDir>>,
    moto: Mutex<Option<MotoServer>>,
}

impl Teardown {
    /// Signals shutdown and waits (bounded) for `run` to return; `None` if
    /// it was already stopped.
    async fn stop_server(&self) -> Option<anyhow::Result<()>> {
        if let Some(tx) = lock(&self.shutdown).take() {
            let _ = tx.send(());
        }
        let task = lock(&self.task).take()?;
        match tokio::time::timeout(STOP_TIMEOUT, task).await {
            Ok(Ok(result)) => Some(result),
            Ok(Err(e)) => Some(Err(anyhow::anyhow!("the server task failed: {e}"))),
            Err(_) => Some(Err(anyhow::anyhow!(
                "the server did not stop within {STOP_TIMEOUT:?} of its shutdown signal"
            ))),
        }
    }

    /// Stops the server, drops the database, removes the directory and
    /// stops `moto_server`; returns how `run` ended if it was still running.
    pub async fn run(&self) -> Option<anyhow::Result<()>> {
        let stopped = self.stop_server().await;
        let database = lock(&self.database).take();
        if let Some(database) = database {
            database.drop_database().await;
        }
        drop(lock(&self.dir).take());
        drop(lock(&self.moto).take());
        stopped
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One response: its status, headers and body (JSON, a string if the body
/// is not JSON, `null` if it is empty).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status and returns the body.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "expected status {status}, got {} with {}",
            self.status, self.body
        );
        self.body
    }

    /// Asserts an error response: its status, its `code` and a message.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> &Value {
        assert_eq!(
            (self.status, self.body["code"].as_str()),
            (status, Some(code)),
            "expected {status} {code}, got {} with {}",
            self.status,
            self.body
        );
        assert!(
            self.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "an error has a message: {}",
            self.body
        );
        &self.body
    }

    /// The `field` of every entry in `fields`.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["fields"]
            .as_array()
            .map(|fields| {
                fields
                    .iter()
                    .filter_map(|f| f["field"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One response with its body as bytes.
#[derive(Debug)]
pub struct RawReply {
    pub status: u16,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
}

impl RawReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// An account made by the helpers.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub password: String,
}

impl TestUser {
    pub fn user_id(&self) -> UserId {
        UserId::from_uuid(self.id)
    }
}

/// What a login or refresh hands out.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

impl Tokens {
    #[track_caller]
    fn from_body(body: &Value) -> Self {
        let field = |name: &str| {
            body[name]
                .as_str()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| panic!("no {name} in {body}"))
                .to_string()
        };
        assert_eq!(body["token_type"], "Bearer", "{body}");
        Self {
            access: field("access_token"),
            refresh: field("refresh_token"),
        }
    }
}

/// One `.eml` file from the outbox, decoded.
#[derive(Clone, Debug)]
pub struct Mail {
    pub path: PathBuf,
    pub to: String,
    pub subject: String,
    /// The plain-text part.
    pub text: String,
}

impl Mail {
    /// The first link in the text that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> Option<String> {
        let start = self.text.find(prefix)?;
        let link: String = self.text[start..]
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '<' && *c != '>' && *c != '"')
            .collect();
        Some(link)
    }
}

/// A running server and a client for it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`, also the configured public URL.
    pub address: String,
    pub client: reqwest::Client,
    /// The server's state: its stores can be reached directly.
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub outbox: PathBuf,
    pub backend: Backend,
    teardown: Arc<Teardown>,
    seen_mail: Mutex<HashSet<PathBuf>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Sends a request and reads the whole response. Every response must
    /// carry an `x-request-id`.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let RawReply {
            status,
            headers,
            bytes,
        } = self.send_raw(request).await;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// [`Self::send`], keeping the body as bytes.
    pub async fn send_raw(&self, request: reqwest::RequestBuilder) -> RawReply {
        let response = request.send().await.expect("send the request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("read the response body");
        assert!(
            headers
                .get("x-request-id")
                .is_some_and(|v| !v.as_bytes().is_empty()),
            "every response has an x-request-id; this {status} has none"
        );
        RawReply {
            status,
            headers,
            bytes: bytes.to_vec(),
        }
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut request = self.request(method, path);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(request).await
    }

    pub async fn get_json(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None, None).await
    }

    pub async fn get_json_as(&self, token: &str, path: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.call(Method::POST, path, None, Some(body)).await
    }

    pub async fn post_json_as(&self, token: &str, path: &str, body: &Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch_json_as(&self, token: &str, path: &str, body: &Value) -> Reply {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    /// A POST without a body.
    pub async fn post_as(&self, token: &str, path: &str) -> Reply {
        self.call(Method::POST, path, Some(token), None).await
    }

    /// A DELETE without a body.
    pub async fn delete_as(&self, token: &str, path: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    pub async fn delete_json_as(&self, token: &str, path: &str, body: &Value) -> Reply {
        self.call(Method::DELETE, path, Some(token), Some(body))
            .await
    }

    // --- the API, typed ---

    pub async fn register(&self, username: &str, email: &str, password: &str) -> Reply {
        self.post_json(
            "/api/v1/auth/register",
            &json!({ "username": username, "email": email, "password": password }),
        )
        .await
    }

    /// Registers `<username>@example.com` with [`PASSWORD`].
    pub async fn register_user(&self, username: &str) -> TestUser {
        let email = format!("{username}@example.com");
        let body = self.register(username, &email, PASSWORD).await.expect(201);
        TestUser {
            id: body["id"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .unwrap_or_else(|| panic!("no id in {body}")),
            username: username.to_lowercase(),
            email: email.to_lowercase(),
            password: PASSWORD.to_string(),
        }
    }

    pub async fn login(&self, login: &str, password: &str) -> Reply {
        self.post_json(
            "/api/v1/auth/login",
            &json!({ "login": login, "password": password }),
        )
        .await
    }

    pub async fn login_ok(&self, login: &str, password: &str) -> Tokens {
        let body = self.login(login, password).await.expect(200);
        Tokens::from_body(&body)
    }

    /// A registered, signed-in account whose address is not verified.
    pub async fn signed_up(&self, username: &str) -> (TestUser, Tokens) {
        let user = self.register_user(username).await;
        let tokens = self.login_ok(&user.username, &user.password).await;
        (user, tokens)
    }

    /// A registered account that followed its verification link, signed in.
    pub async fn verified_user(&self, username: &str) -> (TestUser, Tokens) {
        let user = self.register_user(username).await;
        self.verify_latest_link(&user.email).await.expect(200);
        let tokens = self.login_ok(&user.username, &user.password).await;
        (user, tokens)
    }

    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        self.post_json(
            "/api/v1/auth/refresh",
            &json!({ "refresh_token": refresh_token }),
        )
        .await
    }

    pub async fn refresh_ok(&self, refresh_token: &str) -> Tokens {
        let body = self.refresh(refresh_token).await.expect(200);
        Tokens::from_body(&body)
    }

    pub async fn me(&self, access_token: &str) -> Reply {
        self.get_json_as(access_token, "/api/v1/me").await
    }

    pub async fn forgot_password(&self, email: &str) -> Reply {
        self.post_json("/api/v1/auth/forgot-password", &json!({ "email": email }))
            .await
    }

    pub async fn reset_password(&self, token: &str, password: &str) -> Reply {
        self.post_json(
            "/api/v1/auth/reset-password",
            &json!({ "token": token, "password": password }),
        )
        .await
    }

    pub async fn become_seller(&self, access_token: &str) -> Reply {
        self.post_json_as(access_token, "/api/v1/me/seller", &seller_profile())
            .await
    }

    /// A verified account with a seller profile, signed in.
    pub async fn seller(&self, username: &str) -> (TestUser, Tokens) {
        let (user, tokens) = self.verified_user(username).await;
        self.become_seller(&tokens.access).await.expect(201);
        (user, tokens)
    }

    // --- gigs, media and search ---

    pub async fn create_gig(&self, access_token: &str, body: &Value) -> Reply {
        self.post_json_as(access_token, "/api/v1/gigs", body).await
    }

    /// Creates a gig that must be accepted, and returns it.
    pub async fn create_gig_ok(&self, access_token: &str, body: &Value) -> Value {
        self.create_gig(access_token, body).await.expect(201)
    }

    /// `GET /gigs/{id}`, anonymously or as someone.
    pub async fn gig(&self, access_token: Option<&str>, id: &str) -> Reply {
        let path = format!("/api/v1/gigs/{id}");
        match access_token {
            Some(token) => self.get_json_as(token, &path).await,
            None => self.get_json(&path).await,
        }
    }

    /// Posts `bytes` as the body of `/gigs/{id}/media`, with the given
    /// `Content-Type` header if any.
    pub async fn upload_media(
        &self,
        access_token: &str,
        gig_id: &str,
        content_type: Option<&str>,
        bytes: Vec<u8>,
    ) -> Reply {
        let mut request = self
            .request(Method::POST, &format!("/api/v1/gigs/{gig_id}/media"))
            .bearer_auth(access_token)
            .body(bytes);
        if let Some(content_type) = content_type {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        self.send(request).await
    }

    /// Follows a media `url` (`/media/...`) the way a browser would: the
    /// bytes the server answers with, or those at the address it redirects
    /// to. `None` for a 404 in the API's error shape, or from the address
    /// redirected to.
    pub async fn fetch_media(&self, url: &str) -> Option<Served> {
        let reply = self.send_raw(self.request(Method::GET, url)).await;
        match reply.status {
            200 => Some(Served {
                content_type: reply.header("content-type").unwrap_or_default().to_string(),
                headers: reply.headers,
                bytes: reply.bytes,
                redirected_to: None,
            }),
            301 | 302 | 303 | 307 | 308 => {
                let location = reply
                    .header("location")
                    .unwrap_or_else(|| panic!("a {} from {url} without a Location", reply.status))
                    .to_string();
                let response = reqwest::get(&location)
                    .await
                    .unwrap_or_else(|e| panic!("GET {location} (from {url}): {e}"));
                // The object can go between the server's check and this GET
                // (a deletion finishing in the background): gone is gone.
                if response.status() == 404 {
                    return None;
                }
                assert_eq!(response.status(), 200, "GET {location} (from {url})");
                let headers = response.headers().clone();
                let bytes = response.bytes().await.expect("read the media body");
                Some(Served {
                    content_type: headers
                        .get(reqwest::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string(),
                    headers,
                    bytes: bytes.to_vec(),
                    redirected_to: Some(location),
                })
            }
            404 => {
                let body: Value = serde_json::from_slice(&reply.bytes)
                    .unwrap_or_else(|_| panic!("a 404 from {url} that is not JSON"));
                assert_eq!(body["code"], "not_found", "{body}");
                None
            }
            status => panic!(
                "GET {url} answered {status}: {}",
                String::from_utf8_lossy(&reply.bytes)
            ),
        }
    }

    /// The keys of every object in the media store, sorted: the files
    /// under the media directory, or the objects in the S3 bucket (listed
    /// over plain HTTP: `moto_server` does not check signatures).
    pub async fn stored_media(&self) -> Vec<String> {
        let settings = &self.state.settings;
        let mut keys = match settings.media.backend {
            MediaBackend::Local => {
                let root = settings.media_dir();
                let mut keys = Vec::new();
                list_files(&root, &root, &mut keys);
                keys
            }
            MediaBackend::S3 => {
                let url = format!(
                    "{}/{}?list-type=2",
                    settings.media.s3_endpoint, settings.media.s3_bucket
                );
                let response = reqwest::get(&url)
                    .await
                    .unwrap_or_else(|e| panic!("GET {url}: {e}"));
                assert_eq!(response.status(), 200, "GET {url}");
                let xml = response.text().await.expect("read the bucket listing");
                xml.split("<Key>")
                    .skip(1)
                    .filter_map(|rest| rest.split_once("</Key>").map(|(key, _)| key.to_string()))
                    .collect()
            }
        };
        keys.sort();
        keys
    }

    /// `GET /search/gigs` with `params` (encoded here).
    pub async fn search(&self, params: &[(&str, &str)]) -> Reply {
        self.send(
            self.request(Method::GET, "/api/v1/search/gigs")
                .query(params),
        )
        .await
    }

    /// A search that must succeed; its body.
    pub async fn search_ok(&self, params: &[(&str, &str)]) -> Value {
        self.search(params).await.expect(200)
    }

    /// Polls the search with `params` (bounded) until its first page holds
    /// exactly the gigs `expected`, in any order, and returns it.
    pub async fn wait_for_hits(&self, params: &[(&str, &str)], expected: &[&str]) -> Value {
        let mut want: Vec<&str> = expected.to_vec();
        want.sort_unstable();
        eventually(&format!("search {params:?} finding {want:?}"), || async {
            let page = self.search_ok(params).await;
            let mut ids = hit_ids(&page);
            ids.sort();
            if ids == want {
                Ok(page)
            } else {
                Err(format!("{ids:?}"))
            }
        })
        .await
    }

    // --- mail ---

    /// Every mail of `kind` to `to` in the outbox now, oldest first.
    pub fn mails(&self, kind: &str, to: &str) -> Vec<Mail> {
        let Ok(entries) = std::fs::read_dir(&self.outbox) else {
            return Vec::new();
        };
        let marker = format!("-{kind}-");
        let mut paths: Vec<(PathBuf, std::time::SystemTime)> = entries
            .filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                !name.starts_with('.') && name.ends_with(".eml") && name.contains(&marker)
            })
            .filter_map(|e| {
                let modified = e.metadata().and_then(|m| m.modified()).ok()?;
                Some((e.path(), modified))
            })
            .collect();
        // The name starts with a millisecond timestamp; the modification
        // time separates two mails of one millisecond.
        paths.sort_by_key(|(path, modified)| {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            (
                name.map(|n| n.split('-').next().unwrap_or("").to_string()),
                *modified,
            )
        });
        paths
            .into_iter()
            .map(|(path, _)| parse_mail(&path))
            .filter(|mail| mail.to.eq_ignore_ascii_case(to))
            .collect()
    }

    /// Waits (bounded) for a mail of `kind` to `to` that no earlier call
    /// returned, and returns the newest such.
    pub async fn wait_for_mail(&self, kind: &str, to: &str) -> Mail {
        let deadline = Instant::now() + MAIL_TIMEOUT;
        loop {
            let fresh = {
                let seen = lock(&self.seen_mail);
                self.mails(kind, to)
                    .into_iter()
                    .rfind(|m| !seen.contains(&m.path))
            };
            if let Some(mail) = fresh {
                let mut seen = lock(&self.seen_mail);
                for m in self.mails(kind, to) {
                    seen.insert(m.path);
                }
                return mail;
            }
            assert!(
                Instant::now() < deadline,
                "no new {kind} mail to {to} in {} within {MAIL_TIMEOUT:?}",
                self.outbox.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The token of the newest unseen mail of `kind` to `to`, whose link
    /// must lead to `<public_url><path>?token=`.
    pub async fn mailed_token(&self, kind: &str, to: &str, path: &str) -> String {
        let mail = self.wait_for_mail(kind, to).await;
        let prefix = format!("{}{path}?token=", self.address);
        let link = mail.link(&prefix).unwrap_or_else(|| {
            panic!(
                "no link {prefix}... in {}:\n{}",
                mail.path.display(),
                mail.text
            )
        });
        let token = link[prefix.len()..].to_string();
        assert!(
            token.len() >= 32
                && token
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "a URL-safe token in {link}"
        );
        token
    }

    pub async fn verification_token(&self, email: &str) -> String {
        self.mailed_token("verify_email", email, "/verify-email")
            .await
    }

    pub async fn reset_token(&self, email: &str) -> String {
        self.mailed_token("reset_password", email, "/reset-password")
            .await
    }

    /// Follows the newest unseen verification mail to `email`: posts its
    /// token to `/auth/verify-email`.
    pub async fn verify_latest_link(&self, email: &str) -> Reply {
        let token = self.verification_token(email).await;
        self.post_json("/api/v1/auth/verify-email", &json!({ "token": token }))
            .await
    }

    /// Signals shutdown and waits (bounded) for `run` to return.
    pub async fn shutdown(&self) -> anyhow::Result<()> {
        self.teardown
            .stop_server()
            .await
            .unwrap_or_else(|| Err(anyhow::anyhow!("the server was already stopped")))
    }

    /// Stops the server, calls `between` with its settings while it is
    /// down, and starts it again from the same settings on a new port: the
    /// same database, data directory (token key, search index, media),
    /// clock and `moto_server`. The old state is dropped first, and the
    /// restart waits (bounded) until nothing of the previous server holds
    /// the search index open.
    pub async fn restart(self, between: impl FnOnce(&Settings)) -> TestApp {
        self.shutdown().await.expect("the server stops cleanly");
        let TestApp {
            state,
            clock,
            backend,
            teardown,
            seen_mail,
            ..
        } = self;
        let mut settings = Settings::clone(&state.settings);
        // `run` returns once its actors were told to stop; the search
        // indexer lets go of the index (and its writer's lock) only when it
        // has stopped, a moment later.
        let search = Arc::downgrade(&state.search);
        drop(state);
        eventually("the stopped server lets go of the search index", || {
            let holders = search.strong_count();
            async move {
                match holders {
                    0 => Ok(()),
                    n => Err(format!("{n} holders")),
                }
            }
        })
        .await;
        between(&settings);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a port on 127.0.0.1");
        settings.server.public_url = format!(
            "http://{}",
            listener.local_addr().expect("the listener's address")
        );
        let seen_mail = seen_mail
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        start(backend, listener, settings, clock, teardown, seen_mail).await
    }

    /// Stops the server and drops its database and files.
    #[allow(dead_code)]
    pub async fn teardown(self) -> Option<anyhow::Result<()>> {
        self.teardown.run().await
    }
}

/// A complete, valid seller profile.
pub fn seller_profile() -> Value {
    json!({
        "full_name": "Ada Lovelace",
        "one_liner": "Analytical engines, programmed",
        "description": "I write programs for machines that do not exist yet.",
        "languages": [{ "language": "English", "level": "native" }],
        "skills": ["rust", "mathematics"],
        "education": [{ "school": "University of London", "degree": "Mathematics", "year": 1990 }],
        "certificates": [],
        "links": ["https://example.com/ada"],
    })
}

/// How long a condition polled with [`eventually`] may take.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(10);

/// Calls `check` until it answers `Ok`, for at most [`POLL_TIMEOUT`]; then
/// fails naming `what` and the last `Err` (what was seen instead).
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + POLL_TIMEOUT;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) => assert!(
                Instant::now() < deadline,
                "{what}: not within {POLL_TIMEOUT:?}; last seen: {seen}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A media file as a client receives it.
#[derive(Debug)]
pub struct Served {
    pub content_type: String,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
    /// Where the server redirected to, if it did (S3).
    pub redirected_to: Option<String>,
}

/// The files under `dir` as `/`-separated paths relative to `root`,
/// without hidden ones (the local store's sidecars and temporary files).
fn list_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            list_files(root, &path, out);
        } else if let Ok(relative) = path.strip_prefix(root) {
            let parts: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(parts.join("/"));
        }
    }
}

/// The `id` of every hit of a search page, in order.
pub fn hit_ids(page: &Value) -> Vec<String> {
    page["hits"]
        .as_array()
        .unwrap_or_else(|| panic!("no hits in {page}"))
        .iter()
        .map(|hit| {
            hit["id"]
                .as_str()
                .unwrap_or_else(|| panic!("a hit without an id: {hit}"))
                .to_string()
        })
        .collect()
}

/// A package of a gig body.
pub fn package(tier: &str, price: i64, delivery_days: i64) -> Value {
    json!({
        "tier": tier,
        "name": format!("The {tier} package"),
        "description": "Everything listed in the gig, delivered as agreed.",
        "price": price,
        "currency": "USD",
        "delivery_days": delivery_days,
        "revisions": 2,
    })
}

/// A valid new gig with one basic package (25.00, three days); change
/// fields of the returned value to vary it.
pub fn gig_body(title: &str, category: &str, subcategory: &str) -> Value {
    json!({
        "title": title,
        "description": "Careful, complete work delivered on time, with clear communication from start to finish.",
        "category": category,
        "subcategory": subcategory,
        "tags": [],
        "faq": [],
        "packages": [package("basic", 2500, 3)],
    })
}

/// A real image encoded as `format`: a smooth pattern, so it compresses
/// like a picture (a 200×200 PNG is a few kilobytes).
pub fn image_bytes(width: u32, height: u32, format: image::ImageFormat) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(width, height, |x, y| {
        let (x, y) = (x % 256, y % 256);
        image::Rgb([
            u8::try_from(x).unwrap_or(0),
            u8::try_from(y).unwrap_or(0),
            u8::try_from((x + y) / 2).unwrap_or(0),
        ])
    });
    encode(picture, format)
}

/// A real PNG of random pixels: it hardly compresses (about 3 bytes per pixel).
pub fn noise_png(width: u32, height: u32) -> Vec<u8> {
    let mut state: u32 = 0x2545_f491;
    let picture = image::RgbImage::from_fn(width, height, |_, _| {
        // xorshift32
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let [a, b, c, _] = state.to_le_bytes();
        image::Rgb([a, b, c])
    });
    encode(picture, image::ImageFormat::Png)
}

fn encode(picture: image::RgbImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    picture
        .write_to(&mut out, format)
        .unwrap_or_else(|e| panic!("encode a {format:?} image: {e}"));
    out.into_inner()
}

/// Reads an `.eml` the file mailer wrote: headers, and the `text/plain`
/// part with its transfer encoding undone.
fn parse_mail(path: &Path) -> Mail {
    let raw = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .replace("\r\n", "\n");
    let (head, _) = raw
        .split_once("\n\n")
        .unwrap_or_else(|| panic!("{} has no header block", path.display()));
    let header = |name: &str| header_value(head, name).unwrap_or_default();
    let to = header("To");
    let to = to
        .rsplit_once('<')
        .map_or(to.as_str(), |(_, rest)| rest.trim_end_matches('>'))
        .trim()
        .to_string();
    Mail {
        path: path.to_path_buf(),
        to,
        subject: header("Subject"),
        text: text_part(&raw)
            .unwrap_or_else(|| panic!("{} has no text/plain part:\n{raw}", path.display())),
    }
}

/// The unfolded value of the first header called `name`.
fn header_value(head: &str, name: &str) -> Option<String> {
    let mut lines = head.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if !key.trim().eq_ignore_ascii_case(name) {
            continue;
        }
        let mut value = value.trim().to_string();
        while let Some(next) = lines.peek() {
            if next.starts_with([' ', '\t']) {
                value.push(' ');
                value.push_str(next.trim());
                lines.next();
            } else {
                break;
            }
        }
        return Some(value);
    }
    None
}

/// The decoded body of the first `text/plain` part of a message or part
/// (headers, a blank line, the body), looking inside multiparts.
fn text_part(entity: &str) -> Option<String> {
    let (head, body) = entity.split_once("\n\n")?;
    let content_type = header_value(head, "Content-Type").unwrap_or_default();
    if let Some(boundary) = parameter(&content_type, "boundary") {
        let delimiter = format!("--{boundary}");
        return body
            .split(delimiter.as_str())
            .skip(1)
            .take_while(|part| !part.starts_with("--"))
            .find_map(|part| text_part(part.strip_prefix('\n').unwrap_or(part)));
    }
    if !content_type.is_empty() && !content_type.to_ascii_lowercase().starts_with("text/plain") {
        return None;
    }
    let encoding = header_value(head, "Content-Transfer-Encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    Some(match encoding.as_str() {
        "quoted-printable" => decode_quoted_printable(body),
        "base64" => decode_base64(body),
        _ => body.to_string(),
    })
}

/// A parameter of a header value such as `multipart/alternative; boundary="x"`.
fn parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"').to_string())
    })
}

fn decode_quoted_printable(body: &str) -> String {
    let joined = body.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 3 <= bytes.len() {
            if let Some(byte) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn decode_base64(body: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in body.bytes() {
        let Some(value) = ALPHABET.iter().position(|&a| a == c) else {
            continue;
        };
        buffer = (buffer << 6) | u32::try_from(value).unwrap_or(0);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buffer >> bits) & 0xff).unwrap_or(0));
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `value` has an object key `key` at any depth.
pub fn has_key(value: &Value, key: &str) -> bool {
    match value {
        Value::Object(map) => map.contains_key(key) || map.values().any(|v| has_key(v, key)),
        Value::Array(items) => items.iter().any(|v| has_key(v, key)),
        _ => false,
    }
}

/// [`run_scenario`] with a change to the test settings that may capture
/// values (the address of a server the test started first), with media on
/// the local store.
pub async fn run_scenario_changed<F, Fut>(
    backend: Backend,
    change: impl FnOnce(&mut Settings),
    scenario: F,
) where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    init_logging();
    let app = spawn_app_changed(backend, change).await;
    finish_scenario(app, scenario).await;
}

/// [`spawn_app`], with a change to the test settings that may capture
/// values; media on the local store.
pub async fn spawn_app_changed(backend: Backend, change: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_configured(backend, Media::Local, change).await
}
