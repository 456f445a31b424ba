//! Production delivery through an SMTP server.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use domain::account::Email;
use domain::mail::AccountMail;
use domain::ports::{MailError, Mailer};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::message;

/// How the connection to the SMTP server is secured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text; only for a server on loopback or a trusted network.
    None,
    /// Plain connection upgraded with STARTTLS, which the server must offer
    /// (usually port 587).
    #[default]
    StartTls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

/// Where and how to deliver. `Debug` never shows the password.
#[derive(Clone, Debug)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Username and password are given together or not at all.
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// The sender, such as `Marketplace <no-reply@marketplace.example>`.
    pub from: String,
    /// The longest one delivery may take, from connecting to the server's
    /// final answer.
    pub timeout: Duration,
}

/// Delivers account mail through an SMTP server, one connection per mail
/// (account mail is rare; a fresh connection is never left in an unknown
/// state by a timeout).
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    settings: SmtpSettings,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The transport holds the credentials in clear; show only the settings.
        f.debug_struct("SmtpMailer")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// Checks the settings and prepares the transport; connects only when
    /// sending.
    pub fn new(settings: SmtpSettings) -> Result<Self, MailError> {
        let from = message::parse_from(&settings.from)?;
        if settings.host.trim().is_empty() {
            return Err(MailError("smtp host must not be empty".into()));
        }
        if settings.timeout.is_zero() {
            return Err(MailError("smtp timeout must be longer than zero".into()));
        }
        let tls = match settings.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => Tls::Required(tls_parameters(&settings.host)?),
            SmtpTls::Tls => Tls::Wrapper(tls_parameters(&settings.host)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .tls(tls)
            .timeout(Some(settings.timeout));
        match (&settings.username, &settings.password) {
            (Some(username), Some(password)) => {
                builder = builder.credentials(Credentials::new(
                    username.clone(),
                    password.expose_secret().to_owned(),
                ));
            }
            (None, None) => {}
            _ => {
                return Err(MailError(
                    "smtp username and password must be set together".into(),
                ))
            }
        }
        Ok(Self {
            transport: builder.build(),
            from,
            settings,
        })
    }
}

fn tls_parameters(host: &str) -> Result<TlsParameters, MailError> {
    TlsParameters::new(host.to_owned())
        .map_err(|e| MailError(format!("smtp tls setup for {host} failed: {e}")))
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, to: &Email, mail: &AccountMail) -> Result<(), MailError> {
        self.send_with_id(uuid::Uuid::new_v4(), to, mail, None)
            .await
    }

    async fn send_with_id(
        &self,
        id: uuid::Uuid,
        to: &Email,
        mail: &AccountMail,
        unsubscribe: Option<&str>,
    ) -> Result<(), MailError> {
        let message = message::build(&self.from, to, mail, id, unsubscribe)?;
        let server = format!("{}:{}", self.settings.host, self.settings.port);
        // lettre bounds connecting with the timeout, not waiting for replies:
        // bound the whole conversation too.
        match tokio::time::timeout(self.settings.timeout, self.transport.send(message)).await {
            Ok(Ok(_response)) => {
                tracing::info!(to = %to, kind = mail.kind(), mail_id = %id, server = %server, "mail sent");
                Ok(())
            }
            Ok(Err(e)) => Err(MailError(format!(
                "smtp delivery through {server} failed: {e}"
            ))),
            Err(_elapsed) => Err(MailError(format!(
                "smtp delivery through {server} timed out after {:?}",
                self.settings.timeout
            ))),
        }
    }
}
