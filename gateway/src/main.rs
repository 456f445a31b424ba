//! The `marketplace` binary.

use std::io::{BufRead as _, IsTerminal as _};
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use domain::account::{Email, Password, Role, Username};
use gateway::config::Settings;
use gateway::AppState;

/// A real-time freelance marketplace.
///
/// With no configuration, `marketplace` serves a complete marketplace on
/// http://127.0.0.1:8080, keeping its SQLite database, outgoing e-mail and
/// keys in ./data. Settings come from a TOML file and `MARKETPLACE_*`
/// environment variables; see marketplace.example.toml.
#[derive(Debug, Parser)]
#[command(name = "marketplace", version)]
struct Cli {
    /// Settings file (TOML). Default: ./marketplace.toml if it exists.
    #[arg(long, global = true, env = "MARKETPLACE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the marketplace server (the default). Applies pending database
    /// migrations first, then serves until SIGTERM or Ctrl-C.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create an administrator account with a verified address. The password
    /// is asked for on a terminal, or read as one line from standard input.
    /// Rebuild the search index from the database (the index is also rebuilt
    /// at start when it is missing or unreadable).
    Reindex,
    /// Fill the marketplace with demo data.
    Seed {
        /// Believable sellers (with profiles), gigs in every category and
        /// buyers; every demo account's password is `marketplace-demo`.
        #[arg(long)]
        demo: bool,
        /// Also add this many generated gigs (varied, deterministic), for benchmarks.
        #[arg(long, value_name = "GIGS")]
        bulk: Option<usize>,
        /// Also make sure this many verified accounts exist for load tests
        /// (`load00001`, `load00002`, ...; existing ones are reused), and open
        /// a new session for each. Needs --tokens-out.
        #[arg(long, value_name = "N", requires = "tokens_out")]
        load_users: Option<usize>,
        /// Where --load-users writes one line per account:
        /// `<user_id> <username> <access_token>` (the `loadgen` token file).
        #[arg(long, value_name = "FILE", requires = "load_users")]
        tokens_out: Option<PathBuf>,
        /// Also make sure this many load-test sellers exist (`loadseller00001`,
        /// ...; existing ones are reused), each with a seller profile and one
        /// active gig. Needs --gigs-out.
        #[arg(long, value_name = "K", requires = "gigs_out")]
        load_gigs: Option<usize>,
        /// Where --load-gigs writes one line per gig: `<gig_id> <seller_id>`
        /// (the `loadgen checkout` gig file).
        #[arg(long, value_name = "FILE", requires = "load_gigs")]
        gigs_out: Option<PathBuf>,
        /// Lifetime of the access tokens --load-users writes, in seconds.
        #[arg(long, value_name = "SECS", default_value_t = 7200)]
        token_ttl_secs: u64,
    },
    CreateAdmin {
        /// The admin's e-mail address.
        #[arg(long)]
        email: String,
        /// The admin's username (3 to 30 of a-z 0-9 _ -).
        #[arg(long)]
        username: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref()).context("reading settings")?;
    gateway::telemetry::init(&settings.log);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            // Building the state connects and migrates.
            let state = AppState::build(settings).await?;
            state.store.close().await;
            println!("database is up to date");
            Ok(())
        }
        Command::CreateAdmin { email, username } => create_admin(settings, &email, &username).await,
        Command::Reindex => {
            let state = AppState::build(settings).await?;
            let count = state
                .gig_actors
                .rebuild_index()
                .await
                .context("the search indexer stopped")??;
            state.gig_actors.stop();
            state.store.close().await;
            println!("search index rebuilt: {count} searchable gigs");
            Ok(())
        }
        Command::Seed {
            demo,
            bulk,
            load_users,
            tokens_out,
            load_gigs,
            gigs_out,
            token_ttl_secs,
        } => {
            anyhow::ensure!(
                demo || bulk.is_some() || load_users.is_some() || load_gigs.is_some(),
                "say what to seed: --demo, --bulk N, --load-users N --tokens-out FILE \
                 and/or --load-gigs K --gigs-out FILE"
            );
            let token_ttl = i64::try_from(token_ttl_secs)
                .ok()
                .and_then(chrono::TimeDelta::try_seconds)
                .filter(|ttl| *ttl > chrono::TimeDelta::zero())
                .context("--token-ttl-secs must be a positive number of seconds")?;
            let state = AppState::build(settings).await?;
            if demo {
                let gigs = gateway::seed::demo(&state).await?;
                println!(
                    "demo marketplace ready: {gigs} new gigs; demo accounts use the password {}",
                    gateway::seed::DEMO_PASSWORD
                );
            }
            if let Some(count) = bulk {
                let started = std::time::Instant::now();
                let gigs = gateway::seed::bulk(&state, count, 20261125).await?;
                println!(
                    "{gigs} generated gigs in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
            }
            if let (Some(count), Some(path)) = (load_users, tokens_out) {
                let started = std::time::Instant::now();
                let made = gateway::seed::load_users(&state, count, token_ttl).await?;
                gateway::seed::write_load_tokens(&path, &made.users)?;
                println!(
                    "{count} load-test accounts ({} new, {} reused) with new sessions in {:.1} s; \
                     tokens valid for {token_ttl_secs} s written to {}",
                    made.created,
                    made.reused,
                    started.elapsed().as_secs_f64(),
                    path.display()
                );
            }
            if let (Some(count), Some(path)) = (load_gigs, gigs_out) {
                let started = std::time::Instant::now();
                let made = gateway::seed::load_gigs(&state, count).await?;
                gateway::seed::write_load_gigs(&path, &made.gigs)?;
                println!(
                    "{count} load-test sellers with an active gig ({} new, {} reused) in {:.1} s; \
                     gig ids written to {}",
                    made.created,
                    made.reused,
                    started.elapsed().as_secs_f64(),
                    path.display()
                );
            }
            state.gig_actors.stop();
            state.store.close().await;
            Ok(())
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    raise_open_files_limit();
    let listen = settings.server.listen;
    let state = AppState::build(settings).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    gateway::run(listener, state, gateway::shutdown_signal()).await
}

/// Every WebSocket session holds a file descriptor: lift the soft limit on
/// open files to the hard limit, which is all an unprivileged process may do.
fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open files limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open files limit"),
    }
}

async fn create_admin(settings: Settings, email: &str, username: &str) -> anyhow::Result<()> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("email {}", e.message))?;
    let username =
        Username::parse(username).map_err(|e| anyhow::anyhow!("username {}", e.message))?;
    let password = read_password()?;
    let state = AppState::build(settings).await?;
    let user = state
        .create_account(email, username, &password, Role::Admin, true)
        .await
        .map_err(|e| anyhow::anyhow!("creating the admin account: {e}"))?;
    state.store.close().await;
    println!("created admin {} ({})", user.username, user.id);
    Ok(())
}

fn read_password() -> anyhow::Result<Password> {
    let parse = |raw: &str| {
        Password::parse("password", raw).map_err(|e| anyhow::anyhow!("password {}", e.message))
    };
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let password = parse(&first)?;
        let second = rpassword::prompt_password("Repeat password: ")?;
        anyhow::ensure!(first == second, "the passwords do not match");
        Ok(password)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        parse(line.trim_end_matches(['\r', '\n']))
    }
}
