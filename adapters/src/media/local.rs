//! The embedded default: media as files in a local directory.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use domain::ports::{MediaError, MediaLocation, MediaStore};
use tokio::io::AsyncWriteExt;

use super::{validate_content_type, validate_key};

/// The content type used when an object's sidecar is missing (only after a
/// crash between the two renames of a `put`, or a file copied in by hand).
const UNKNOWN_TYPE: &str = "application/octet-stream";

/// Keeps each object as a plain file at `<dir>/<key>`, and its content type
/// in a hidden sidecar beside it, `<dir>/<parent>/.<name>.type`.
///
/// Keys pass [`validate_key`](super::validate_key), so a key never leaves
/// the directory and never names a sidecar or a temporary file (no segment
/// starts with a dot). Writes are atomic: each file is written under a
/// hidden temporary name in its final directory and renamed into place, the
/// sidecar before the object, so a reader sees the old object or the new
/// one, never part of one, and an object always has its sidecar.
#[derive(Clone, Debug)]
pub struct LocalMediaStore {
    dir: PathBuf,
}

impl LocalMediaStore {
    /// Creates the directory if it does not exist.
    pub fn new(dir: PathBuf) -> Result<Self, MediaError> {
        std::fs::create_dir_all(&dir).map_err(|e| {
            MediaError::Backend(format!(
                "creating the media directory {} failed: {e}",
                dir.display()
            ))
        })?;
        Ok(Self { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The object's path and its sidecar's.
    fn paths(&self, key: &str) -> Result<(PathBuf, PathBuf), MediaError> {
        validate_key(key)?;
        let object = self.dir.join(key);
        let (parent, name) = match key.rsplit_once('/') {
            Some((parent, name)) => (self.dir.join(parent), name),
            None => (self.dir.clone(), key),
        };
        Ok((object, parent.join(format!(".{name}.type"))))
    }

    fn backend(&self, what: &str, key: &str, e: std::io::Error) -> MediaError {
        MediaError::Backend(format!(
            "{what} {key:?} in {} failed: {e}",
            self.dir.display()
        ))
    }
}

/// Writes `bytes` to `path` whole or not at all.
async fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = async {
        let mut file = tokio::fs::File::create(&temporary).await?;
        file.write_all(bytes).await?;
        file.sync_all().await?;
        drop(file);
        tokio::fs::rename(&temporary, path).await
    }
    .await;
    if written.is_err() {
        let _ = tokio::fs::remove_file(&temporary).await;
    }
    written
}

/// Whether an I/O error means "there is no such object": the file is
/// missing, a parent is a file, or the key names a directory of other keys.
fn is_absent(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::NotFound | ErrorKind::NotADirectory | ErrorKind::IsADirectory
    )
}

#[async_trait]
impl MediaStore for LocalMediaStore {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn put(&self, key: &str, content_type: &str, bytes: Vec<u8>) -> Result<(), MediaError> {
        let (object, sidecar) = self.paths(key)?;
        validate_content_type(content_type)?;
        if let Some(parent) = object.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| self.backend("creating the directory for", key, e))?;
        }
        write_atomically(&sidecar, format!("{content_type}\n").as_bytes())
            .await
            .map_err(|e| self.backend("writing the content type of", key, e))?;
        write_atomically(&object, &bytes)
            .await
            .map_err(|e| self.backend("writing", key, e))
    }

    async fn fetch(&self, key: &str) -> Result<Option<MediaLocation>, MediaError> {
        let (object, sidecar) = self.paths(key)?;
        let bytes = match tokio::fs::read(&object).await {
            Ok(bytes) => bytes,
            Err(e) if is_absent(&e) => return Ok(None),
            Err(e) => return Err(self.backend("reading", key, e)),
        };
        let content_type = match tokio::fs::read_to_string(&sidecar).await {
            Ok(text) => text.trim().to_owned(),
            Err(e) if e.kind() == ErrorKind::NotFound => UNKNOWN_TYPE.to_owned(),
            Err(e) => return Err(self.backend("reading the content type of", key, e)),
        };
        let content_type = if validate_content_type(&content_type).is_ok() {
            content_type
        } else {
            UNKNOWN_TYPE.to_owned()
        };
        Ok(Some(MediaLocation::Bytes {
            content_type,
            bytes,
        }))
    }

    async fn delete(&self, key: &str) -> Result<(), MediaError> {
        let (object, sidecar) = self.paths(key)?;
        // The object first: a sidecar without its object is never read.
        for (path, what) in [
            (&object, "deleting"),
            (&sidecar, "deleting the content type of"),
        ] {
            match tokio::fs::remove_file(path).await {
                Ok(()) => {}
                Err(e) if is_absent(&e) => {}
                Err(e) => return Err(self.backend(what, key, e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_directory() {
        let store = LocalMediaStore {
            dir: PathBuf::from("/srv/media"),
        };
        let (object, sidecar) = store.paths("gigs/7/cover.png").unwrap();
        assert_eq!(object, Path::new("/srv/media/gigs/7/cover.png"));
        assert_eq!(sidecar, Path::new("/srv/media/gigs/7/.cover.png.type"));
        let (object, sidecar) = store.paths("a.jpg").unwrap();
        assert_eq!(object, Path::new("/srv/media/a.jpg"));
        assert_eq!(sidecar, Path::new("/srv/media/.a.jpg.type"));
        for key in ["../a", "/a", "a/../../b", ".a.jpg.type", "a/.b"] {
            assert!(
                matches!(store.paths(key), Err(MediaError::Rejected(_))),
                "{key}"
            );
        }
    }
}
