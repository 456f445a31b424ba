#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Local servers for integration tests: the PyPI ones that `scripts/test.sh` installs
//! into `.venv-services` (`aiosmtpd`, `moto_server`, `localstripe`), each
//! started on a free loopback port in its own temporary directory and killed
//! on drop.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The executable `name` from `.venv-services/bin`, or where the environment
/// variable `env_var` points. Missing, the test fails (never skips) saying
/// how to install it.
pub fn executable(env_var: &str, name: &str) -> PathBuf {
    let path = std::env::var_os(env_var)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // This crate sits directly in the workspace.
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap()
                .join(".venv-services/bin")
                .join(name)
        });
    assert!(
        path.is_file(),
        "{name} not found at {}: run scripts/test.sh, which installs it into \
         .venv-services (or point {env_var} at a {name} executable)",
        path.display()
    );
    path
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process listening on `127.0.0.1:port`; killed on drop.
pub struct Service {
    name: String,
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Service {
    /// Starts `executable` with the arguments `args(port, dir)` returns (it
    /// may also prepare files in `dir`, a fresh temporary directory), its
    /// output going to `dir/<name>.log`, and waits up to `ready_within` for
    /// it to accept connections. The port is free when chosen but could be
    /// taken before the server binds it; then another is tried.
    pub fn start(
        executable: &Path,
        ready_within: Duration,
        args: impl Fn(u16, &Path) -> Vec<String>,
    ) -> Service {
        let name = executable
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mut failures = Vec::new();
        for _ in 0..3 {
            let dir = TempDir::new().unwrap();
            let port = free_port();
            let arguments = args(port, dir.path());
            let log = std::fs::File::create(dir.path().join(format!("{name}.log"))).unwrap();
            let child = Command::new(executable)
                .args(&arguments)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {} failed: {e}", executable.display()));
            let mut service = Service {
                name: name.clone(),
                child,
                port,
                dir,
            };
            match service.wait_until_listening(ready_within) {
                Ok(()) => return service,
                Err(why) => failures.push(why),
            }
        }
        panic!("{name} did not start: {failures:#?}");
    }

    /// [`Service::start`] on a given port (a test that first saw nothing
    /// listen there); fails if the server does not come up on it.
    pub fn start_on(
        executable: &Path,
        port: u16,
        ready_within: Duration,
        args: impl Fn(u16, &Path) -> Vec<String>,
    ) -> Service {
        let name = executable
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let dir = TempDir::new().unwrap();
        let arguments = args(port, dir.path());
        let log = std::fs::File::create(dir.path().join(format!("{name}.log"))).unwrap();
        let child = Command::new(executable)
            .args(&arguments)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} failed: {e}", executable.display()));
        let mut service = Service {
            name,
            child,
            port,
            dir,
        };
        if let Err(why) = service.wait_until_listening(ready_within) {
            panic!("{why}");
        }
        service
    }

    fn wait_until_listening(&mut self, limit: Duration) -> Result<(), String> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!(
                    "{} exited with {status}: {}",
                    self.name,
                    self.log()
                ));
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} not listening on {address} after {limit:?}: {}",
                    self.name,
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the server printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{}.log", self.name)))
            .unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `moto_server` (S3 and DynamoDB APIs) on `http://127.0.0.1:<port>`.
pub fn moto_server() -> Service {
    let executable = executable("MARKETPLACE_MOTO_SERVER", "moto_server");
    Service::start(&executable, Duration::from_secs(60), |port, _| {
        vec![
            "-H".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
        ]
    })
}

/// A `moto_server` that handles one request at a time. moto's DynamoDB
/// undoes a failed transaction by restoring a copy of the tables taken
/// before it, which on its threaded server can also undo a concurrent
/// transaction that succeeded; real DynamoDB isolates them. Serving
/// requests one by one keeps the races between clients (the stores'
/// conditional writes still decide them) and removes the one inside moto.
pub fn moto_server_serial() -> Service {
    let executable = executable("MARKETPLACE_MOTO_SERVER", "moto_server");
    // The console script's interpreter has moto installed.
    let script = std::fs::read_to_string(&executable).expect("read the moto_server script");
    let python = script
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("#!"))
        .map(|line| PathBuf::from(line.trim()))
        .expect("moto_server starts with #!<python>");
    const SERVE: &str = "import sys\n\
        from moto.server import DomainDispatcherApplication, create_backend_app\n\
        from werkzeug.serving import run_simple\n\
        run_simple('127.0.0.1', int(sys.argv[1]), \
        DomainDispatcherApplication(create_backend_app), threaded=False)\n";
    Service::start(&python, Duration::from_secs(60), |port, _| {
        vec!["-c".into(), SERVE.into(), port.to_string()]
    })
}

/// A localstripe (a local stand-in for Stripe's API) with an empty store,
/// on `http://127.0.0.1:<port>/`; API keys are any `sk_test_...`.
pub fn localstripe() -> Service {
    let executable = executable("MARKETPLACE_LOCALSTRIPE", "localstripe");
    // `--from-scratch`: localstripe otherwise loads the objects a previous
    // run left in /tmp/localstripe.pickle.
    Service::start(&executable, Duration::from_secs(60), |port, _| {
        vec!["--port".into(), port.to_string(), "--from-scratch".into()]
    })
}

/// Has `localstripe` deliver every event, signed with `secret` as Stripe
/// signs webhooks, to `url` (localstripe's `POST /_config/webhooks/{id}`;
/// registering the same `id` again replaces the target).
pub fn localstripe_webhook(localstripe: &Service, id: &str, url: &str, secret: &str) {
    let status = post_form(
        localstripe.port(),
        &format!("/_config/webhooks/{id}"),
        &[("url", url), ("secret", secret)],
    );
    assert_eq!(
        status,
        200,
        "registering the webhook {url} failed: {}",
        localstripe.log()
    );
}

/// Sends `POST path` with the form `fields` to `127.0.0.1:port` and
/// returns the response's status code.
pub fn post_form(port: u16, path: &str, fields: &[(&str, &str)]) -> u16 {
    fn encode(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    let body = fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"))
}

/// An `aiosmtpd` delivering into the Maildir `<dir>/maildir` (received mail
/// lands in `new/`), on `port` or, without one, a free port.
pub fn aiosmtpd(port: Option<u16>) -> Service {
    let executable = executable("MARKETPLACE_AIOSMTPD", "aiosmtpd");
    let args = |port: u16, dir: &Path| {
        let maildir = dir.join("maildir");
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        vec![
            "-n".into(),
            "-l".into(),
            format!("127.0.0.1:{port}"),
            "-c".into(),
            "aiosmtpd.handlers.Mailbox".into(),
            maildir.display().to_string(),
        ]
    };
    match port {
        Some(port) => Service::start_on(&executable, port, Duration::from_secs(20), args),
        None => Service::start(&executable, Duration::from_secs(20), args),
    }
}

/// The mails an [`aiosmtpd`] received so far, oldest first.
pub fn maildir_messages(smtp: &Service) -> Vec<String> {
    let new = smtp.dir().join("maildir/new");
    let mut files: Vec<_> = std::fs::read_dir(&new)
        .map(|entries| entries.map(|entry| entry.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort_by_key(|path| std::fs::metadata(path).unwrap().modified().unwrap());
    files
        .iter()
        .map(|path| std::fs::read_to_string(path).unwrap())
        .collect()
}
