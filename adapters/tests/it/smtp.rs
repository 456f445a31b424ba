//! The mailers end to end: `SmtpMailer` delivering to a real SMTP server
//! (`aiosmtpd`, installed by `scripts/test.sh`, storing what it receives in a
//! Maildir), and `FileMailer` writing `.eml` files. Received mail is parsed
//! just enough to check headers, the MIME structure and the link.

use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use adapters::mail::{render, FileMailer, SmtpMailer, SmtpSettings, SmtpTls};
use base64::Engine as _;
use chrono::TimeZone;
use domain::account::Email;
use domain::mail::AccountMail;
use domain::ports::Mailer;
use tempfile::TempDir;

use crate::service::{self, free_port, Service};

const FROM: &str = "Marketplace <no-reply@marketplace.example>";
const LINK: &str = "https://marketplace.example/account/verify?token=Zm9vYmFyYmF6_-0123456789";

fn recipient() -> Email {
    Email::parse("ada.lovelace@example.com").unwrap()
}

fn verify_email() -> AccountMail {
    AccountMail::VerifyEmail {
        username: "ada".into(),
        link: LINK.into(),
        valid_hours: 24,
    }
}

fn reset_password() -> AccountMail {
    AccountMail::ResetPassword {
        username: "ada".into(),
        link: LINK.replace("verify", "reset-password"),
        valid_minutes: 30,
    }
}

fn password_changed() -> AccountMail {
    AccountMail::PasswordChanged {
        username: "ada".into(),
        changed_at: chrono::Utc.with_ymd_and_hms(2025, 3, 7, 9, 5, 0).unwrap(),
    }
}

// ---------------------------------------------------------------------------
// A real SMTP server on loopback
// ---------------------------------------------------------------------------

/// An `aiosmtpd` process delivering into a Maildir; killed on drop.
struct SmtpServer {
    service: Service,
}

impl SmtpServer {
    fn start() -> Self {
        let executable = service::executable("MARKETPLACE_AIOSMTPD", "aiosmtpd");
        let service = Service::start(&executable, Duration::from_secs(20), |port, dir| {
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
        });
        SmtpServer { service }
    }

    fn log(&self) -> String {
        self.service.log()
    }

    fn settings(&self) -> SmtpSettings {
        SmtpSettings {
            host: "127.0.0.1".into(),
            port: self.service.port(),
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: FROM.into(),
            timeout: Duration::from_secs(10),
        }
    }

    /// Waits for `count` mails in `new/` and returns them, oldest first.
    async fn received(&self, count: usize) -> Vec<String> {
        let new = self.service.dir().join("maildir/new");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut files: Vec<_> = std::fs::read_dir(&new)
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .collect();
            if files.len() >= count {
                files.sort_by_key(|path| std::fs::metadata(path).unwrap().modified().unwrap());
                return files
                    .iter()
                    .map(|path| std::fs::read_to_string(path).unwrap())
                    .collect();
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} mails in {}, found {}; server log: {}",
                new.display(),
                files.len(),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

// ---------------------------------------------------------------------------
// Just enough MIME parsing
// ---------------------------------------------------------------------------

struct Part {
    headers: Vec<(String, String)>,
    body: String,
}

impl Part {
    fn parse(raw: &str) -> Part {
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = raw
            .split_once("\n\n")
            .unwrap_or_else(|| panic!("no blank line after the headers in {raw:?}"));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                let (_, value) = headers.last_mut().expect("continuation before any header");
                value.push(' ');
                value.push_str(line.trim());
            } else {
                let (name, value) = line
                    .split_once(':')
                    .unwrap_or_else(|| panic!("not a header: {line:?}"));
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
        Part {
            headers,
            body: body.to_owned(),
        }
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    fn content_type(&self) -> String {
        self.header("Content-Type").to_ascii_lowercase()
    }

    /// The sub-parts of a multipart body.
    fn parts(&self) -> Vec<Part> {
        let content_type = self.header("Content-Type");
        let boundary = content_type
            .split(';')
            .filter_map(|param| param.trim().strip_prefix("boundary="))
            .map(|b| b.trim_matches('"').to_owned())
            .next()
            .unwrap_or_else(|| panic!("no boundary in {content_type:?}"));
        let delimiter = format!("--{boundary}");
        let (_, rest) = self
            .body
            .split_once(&format!("{delimiter}\n"))
            .expect("no first boundary");
        let (inside, _) = rest
            .split_once(&format!("\n{delimiter}--"))
            .expect("no closing boundary");
        inside
            .split(&format!("\n{delimiter}\n"))
            .map(Part::parse)
            .collect()
    }

    /// The body with its Content-Transfer-Encoding undone.
    fn decoded(&self) -> String {
        let encoding = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Content-Transfer-Encoding"))
            .map(|(_, v)| v.to_ascii_lowercase())
            .unwrap_or_else(|| "7bit".into());
        let decoded = match encoding.as_str() {
            "7bit" | "8bit" => self.body.clone(),
            "base64" => {
                let compact: String = self.body.split_whitespace().collect();
                String::from_utf8(
                    base64::engine::general_purpose::STANDARD
                        .decode(compact)
                        .unwrap(),
                )
                .unwrap()
            }
            "quoted-printable" => decode_quoted_printable(&self.body),
            other => panic!("unexpected transfer encoding {other}"),
        };
        decoded.replace("\r\n", "\n")
    }
}

fn decode_quoted_printable(body: &str) -> String {
    let lines: Vec<&str> = body.split('\n').collect();
    let mut bytes = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim_end_matches([' ', '\t', '\r']);
        // A trailing `=` is a soft line break: the line goes on.
        let (line, soft) = match line.strip_suffix('=') {
            Some(line) => (line, true),
            None => (line, false),
        };
        let raw = line.as_bytes();
        let mut at = 0;
        while at < raw.len() {
            if raw[at] == b'=' && at + 2 < raw.len() {
                let hex = std::str::from_utf8(&raw[at + 1..at + 3]).unwrap();
                bytes.push(u8::from_str_radix(hex, 16).unwrap());
                at += 3;
            } else {
                bytes.push(raw[at]);
                at += 1;
            }
        }
        if !soft && i + 1 < lines.len() {
            bytes.push(b'\n');
        }
    }
    String::from_utf8(bytes).unwrap()
}

/// Checks everything a recipient relies on and returns (text, html).
fn check_message(raw: &str, mail: &AccountMail) -> (String, String) {
    let message = Part::parse(raw);
    let expected = render(mail).unwrap();
    assert_eq!(message.header("To"), recipient().as_str());
    assert_eq!(message.header("From"), FROM);
    assert_eq!(message.header("Subject"), expected.subject);
    assert!(!message.header("Date").is_empty());
    let message_id = message.header("Message-ID");
    assert!(
        message_id.starts_with('<') && message_id.ends_with("@marketplace.example>"),
        "{message_id}"
    );
    assert!(
        message.content_type().starts_with("multipart/alternative"),
        "{}",
        message.content_type()
    );

    let parts = message.parts();
    assert_eq!(parts.len(), 2, "expected a text and an html part");
    assert!(parts[0].content_type().starts_with("text/plain"));
    assert!(parts[0].content_type().contains("charset=utf-8"));
    assert!(parts[1].content_type().starts_with("text/html"));
    let (text, html) = (parts[0].decoded(), parts[1].decoded());
    assert_eq!(text.trim_end(), expected.text.trim_end());
    assert_eq!(html.trim_end(), expected.html.trim_end());
    if let Some(link) = mail.link() {
        assert!(text.contains(link), "no link in the text part: {text}");
        assert!(html.contains(link), "no link in the html part: {html}");
    }
    (text, html)
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

async fn delivered_over_smtp(mail: AccountMail) -> (String, String) {
    let server = SmtpServer::start();
    let mailer = SmtpMailer::new(server.settings()).unwrap();
    mailer.send(&recipient(), &mail).await.unwrap();
    let received = server.received(1).await;
    assert_eq!(received.len(), 1);
    let envelope = Part::parse(&received[0]);
    assert_eq!(envelope.header("X-RcptTo"), recipient().as_str());
    assert_eq!(
        envelope.header("X-MailFrom"),
        "no-reply@marketplace.example"
    );
    check_message(&received[0], &mail)
}

#[tokio::test]
async fn verify_email_arrives_over_smtp() {
    let (text, _) = delivered_over_smtp(verify_email()).await;
    assert!(text.contains("expires in 24 hours"));
}

#[tokio::test]
async fn reset_password_arrives_over_smtp() {
    let (text, _) = delivered_over_smtp(reset_password()).await;
    assert!(text.contains("expires in 30 minutes"));
}

#[tokio::test]
async fn password_changed_arrives_over_smtp() {
    let (text, html) = delivered_over_smtp(password_changed()).await;
    assert!(text.contains("7 March 2025 at 09:05 UTC"));
    assert!(html.contains("7 March 2025 at 09:05 UTC"));
}

#[tokio::test]
async fn one_mailer_sends_several_mails() {
    let server = SmtpServer::start();
    let mailer = SmtpMailer::new(server.settings()).unwrap();
    for mail in [verify_email(), reset_password(), password_changed()] {
        mailer.send(&recipient(), &mail).await.unwrap();
    }
    let received = server.received(3).await;
    let mut subjects: Vec<String> = received
        .iter()
        .map(|raw| Part::parse(raw).header("Subject").to_owned())
        .collect();
    subjects.sort();
    let mut expected: Vec<String> = [verify_email(), reset_password(), password_changed()]
        .iter()
        .map(|mail| render(mail).unwrap().subject)
        .collect();
    expected.sort();
    assert_eq!(subjects, expected);
}

#[tokio::test]
async fn file_mailer_writes_a_parsable_eml() {
    let dir = TempDir::new().unwrap();
    let outbox = dir.path().join("data/outbox");
    let mailer = FileMailer::new(outbox.clone(), FROM).unwrap();
    mailer.send(&recipient(), &verify_email()).await.unwrap();
    mailer
        .send(&recipient(), &password_changed())
        .await
        .unwrap();

    let mut names: Vec<String> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "no temporary files left behind: {names:?}");
    let verify = names
        .iter()
        .find(|name| name.contains("-verify_email-"))
        .unwrap();
    assert!(verify.ends_with(".eml"), "{verify}");
    assert!(names.iter().any(|name| name.contains("-password_changed-")));

    let raw = std::fs::read_to_string(outbox.join(verify)).unwrap();
    assert!(raw.contains("\r\n"), "an .eml uses CRLF line endings");
    check_message(&raw, &verify_email());
}

#[tokio::test]
async fn nothing_listening_fails_promptly() {
    let port = free_port();
    let mailer = SmtpMailer::new(SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username: None,
        password: None,
        from: FROM.into(),
        timeout: Duration::from_secs(2),
    })
    .unwrap();
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        mailer.send(&recipient(), &verify_email()),
    )
    .await
    .expect("send must not hang");
    let err = result.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(err.0.contains(&format!("127.0.0.1:{port}")), "{err}");
}

#[tokio::test]
async fn silent_server_times_out() {
    // Accepts connections (the kernel completes the handshake) but never
    // sends the SMTP greeting.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let mailer = SmtpMailer::new(SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username: None,
        password: None,
        from: FROM.into(),
        timeout: Duration::from_millis(500),
    })
    .unwrap();
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        mailer.send(&recipient(), &verify_email()),
    )
    .await
    .expect("send must not hang");
    let err = result.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(err.0.contains("timed out"), "{err}");
    drop(listener);
}

#[test]
fn settings_debug_hides_the_password() {
    let mailer = SmtpMailer::new(SmtpSettings {
        host: "smtp.example.com".into(),
        port: 587,
        tls: SmtpTls::StartTls,
        username: Some("mailer".into()),
        password: Some("hunter2-very-secret".to_owned().into()),
        from: FROM.into(),
        timeout: Duration::from_secs(10),
    })
    .unwrap();
    let debug = format!("{mailer:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("smtp.example.com"), "{debug}");
}

#[test]
fn half_given_credentials_are_refused() {
    let err = SmtpMailer::new(SmtpSettings {
        host: "smtp.example.com".into(),
        port: 587,
        tls: SmtpTls::StartTls,
        username: Some("mailer".into()),
        password: None,
        from: FROM.into(),
        timeout: Duration::from_secs(10),
    })
    .unwrap_err();
    assert!(err.0.contains("together"), "{err}");
}
