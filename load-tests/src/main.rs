//! `loadgen`: drives the marketplace's live protocol (`/ws`, version 1, see
//! `docs/protocol.md`) with many sessions and reports what the server
//! costs and how fast it delivers; and its checkout (`POST
//! /api/v1/checkout`) with many HTTP clients, for checkouts per second.
//!
//! Layout:
//! - `tokens`: the token file `marketplace seed --load-users` writes.
//! - `system`: open-files limits, the port range, resident memory.
//! - `session`: one session: connect from a source address, `hello`, frames.
//! - `fleet`: opening thousands of sessions with bounded concurrency.
//! - `idle`: `loadgen idle`, memory per idle session.
//! - `chat`: `loadgen chat`, message delivery and acknowledgement latency.
//! - `checkout`: `loadgen checkout`, paid checkouts per second and latency.
//! - `report`: the status line, failure counts, percentiles.

mod chat;
mod checkout;
mod fleet;
mod idle;
mod report;
mod session;
mod system;
mod tokens;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Load generator for the marketplace's live protocol (`/ws`) and checkout.
///
/// Tokens come from `marketplace seed --load-users N --tokens-out FILE`;
/// every session uses its own line of FILE. Gigs to buy come from
/// `marketplace seed --load-gigs K --gigs-out FILE`.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Open N authenticated sessions, hold them idle, and report the
    /// server's resident memory per session.
    Idle(idle::IdleArgs),
    /// Pairs of sessions chatting at a fixed rate: delivery and
    /// acknowledgement latency percentiles.
    Chat(chat::ChatArgs),
    /// Concurrent HTTP clients placing and paying orders for gig packages:
    /// checkouts per second and latency percentiles.
    Checkout(checkout::CheckoutArgs),
}

/// Options of every subcommand.
#[derive(Debug, Args)]
pub struct Common {
    /// The server's WebSocket endpoint.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    pub url: String,
    /// Token file: `<user_id> <username> <access_token>` per line.
    #[arg(long, value_name = "FILE")]
    pub tokens: PathBuf,
    /// The server's process id: its resident memory is reported and its
    /// open-files limit checked before starting.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Spread connections over source addresses 127.0.0.1 .. 127.0.0.K, each
    /// with its own ephemeral ports (0: let the kernel choose).
    #[arg(long, value_name = "K", default_value_t = 8)]
    pub source_addrs: u8,
    /// Sessions being opened (connect, upgrade, hello) at once.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub connect_concurrency: usize,
    /// Time allowed to open one session.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub connect_timeout_secs: u64,
    /// Stop opening sessions after this many failed to open.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_failures: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Idle(args) => idle::run(args).await,
        Command::Chat(args) => chat::run(args).await,
        Command::Checkout(args) => checkout::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loadgen: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let cli = Cli::try_parse_from(["loadgen", "idle", "--tokens", "t.txt", "--sessions", "5"])
            .unwrap();
        let Command::Idle(args) = cli.command else {
            panic!("not idle")
        };
        assert_eq!(args.sessions, 5);
        assert_eq!(args.hold_secs, 10);
        assert_eq!(args.common.url, "ws://127.0.0.1:8080/ws");
        assert_eq!(args.common.source_addrs, 8);
        assert_eq!(args.common.connect_concurrency, 200);
        let cli =
            Cli::try_parse_from(["loadgen", "chat", "--tokens", "t.txt", "--pairs", "2"]).unwrap();
        let Command::Chat(args) = cli.command else {
            panic!("not chat")
        };
        assert_eq!(args.pairs, 2);
        assert_eq!(args.rate, 1.0);
        assert_eq!(
            (args.duration_secs, args.warmup_secs, args.body_bytes),
            (30, 5, 100)
        );
        assert!(Cli::try_parse_from(["loadgen", "idle", "--tokens", "t.txt"]).is_err());
        let cli = Cli::try_parse_from([
            "loadgen", "checkout", "--tokens", "t.txt", "--gigs", "g.txt",
        ])
        .unwrap();
        let Command::Checkout(args) = cli.command else {
            panic!("not checkout")
        };
        assert_eq!(
            (args.clients, args.duration_secs, args.warmup_secs),
            (16, 20, 2)
        );
        assert_eq!(args.url, "http://127.0.0.1:8080");
        assert_eq!(
            (args.package.as_str(), args.payment_method.as_str()),
            ("basic", "4242424242424242")
        );
    }
}
