//! The embedded default: mails become `.eml` files in an outbox directory.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use domain::account::Email;
use domain::mail::AccountMail;
use domain::ports::{MailError, Mailer};
use lettre::message::Mailbox;
use tokio::io::AsyncWriteExt;

use super::message;

/// Writes each mail as a complete MIME message to
/// `<outbox>/<timestamp>-<kind>-<uuid>.eml` and logs its link.
///
/// Files appear whole: each is written under a hidden temporary name in the
/// same directory and renamed into place, so a reader that lists `*.eml`
/// never sees half a mail.
#[derive(Clone, Debug)]
pub struct FileMailer {
    outbox_dir: PathBuf,
    from: Mailbox,
}

impl FileMailer {
    /// `from` is a mailbox such as `Marketplace <no-reply@marketplace.localhost>`.
    /// The directory is created on the first mail if it does not exist.
    pub fn new(outbox_dir: PathBuf, from: &str) -> Result<Self, MailError> {
        Ok(Self {
            outbox_dir,
            from: message::parse_from(from)?,
        })
    }

    pub fn outbox_dir(&self) -> &Path {
        &self.outbox_dir
    }

    async fn write(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, MailError> {
        let dir = &self.outbox_dir;
        let io_error =
            |what: &str, e: std::io::Error| MailError(format!("{what} in {}: {e}", dir.display()));
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| io_error("creating the outbox failed", e))?;
        let path = dir.join(name);
        let temporary = dir.join(format!(".{name}.tmp"));
        let written = async {
            let mut file = tokio::fs::File::create(&temporary).await?;
            file.write_all(bytes).await?;
            file.sync_all().await?;
            drop(file);
            tokio::fs::rename(&temporary, &path).await
        }
        .await;
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&temporary).await;
            return Err(io_error("writing the mail failed", e));
        }
        Ok(path)
    }
}

#[async_trait]
impl Mailer for FileMailer {
    async fn send(&self, to: &Email, mail: &AccountMail) -> Result<(), MailError> {
        self.send_with_id(uuid::Uuid::new_v4(), to, mail, None)
            .await
    }

    /// The file is named after `id` too, so a mail written again under the
    /// same id replaces nothing but is easy to spot.
    async fn send_with_id(
        &self,
        id: uuid::Uuid,
        to: &Email,
        mail: &AccountMail,
        unsubscribe: Option<&str>,
    ) -> Result<(), MailError> {
        let message = message::build(&self.from, to, mail, id, unsubscribe)?;
        let name = format!(
            "{}-{}-{}.eml",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
            mail.kind(),
            id
        );
        let path = self.write(&name, &message.formatted()).await?;
        tracing::info!(
            to = %to,
            kind = mail.kind(),
            link = mail.link(),
            path = %path.display(),
            "mail written to outbox"
        );
        Ok(())
    }
}
