//! Gig media: checking uploaded images and the two
//! [`MediaStore`](domain::ports::MediaStore)s that keep them.
//!
//! - [`inspect`] decides an upload's type from its bytes (JPEG, PNG or WebP)
//!   and refuses anything too large, too small, over the pixel budget or
//!   corrupt, reading the header before decoding anything.
//! - [`LocalMediaStore`]: the embedded default. Files in a directory, served
//!   as bytes by the gateway.
//! - [`S3MediaStore`]: production. Objects in an S3 bucket, served by
//!   redirecting the client to a presigned GET.
//!
//! Both stores take the same keys (see [`validate_key`]): the caller builds
//! them (for example `gigs/<gig id>/<uuid>.jpg`), and a key that could mean
//! something else to a file system or a URL is refused the same way by both.

mod image;
mod local;
mod s3;

pub use self::image::{inspect, ImageInfo, ImageLimits};
pub use local::LocalMediaStore;
pub use s3::{S3MediaStore, S3Settings};

use domain::ports::MediaError;

/// The longest key accepted, in bytes (S3 allows 1024).
pub const MAX_KEY_LEN: usize = 512;

/// Checks a media key: 1 to [`MAX_KEY_LEN`] characters from `a-z`, `0-9`,
/// `/`, `.`, `_` and `-`, made of `/`-separated segments that are neither
/// empty nor start with a dot. So no leading or trailing `/`, no `//`, no
/// `.` or `..` segment, nothing hidden: a key always names a plain file
/// strictly inside a store's directory, and the same object in S3.
///
/// A refused key is [`MediaError::Rejected`] ("invalid media key"): keys
/// that come from a request path (a fetch) are the client's fault.
pub fn validate_key(key: &str) -> Result<(), MediaError> {
    let invalid = |why: &str| Err(MediaError::Rejected(format!("invalid media key: {why}")));
    if key.is_empty() {
        return invalid("empty");
    }
    if key.len() > MAX_KEY_LEN {
        return invalid("too long");
    }
    if let Some(bad) = key
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '/' | '.' | '_' | '-'))
    {
        return invalid(&format!(
            "{bad:?} is not allowed (only a-z, 0-9, /, ., _ and -)"
        ));
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return invalid("empty path segment (leading, trailing or double /)");
        }
        if segment.starts_with('.') {
            return invalid("a path segment may not start with a dot");
        }
    }
    Ok(())
}

/// Checks a content type before it is stored and later sent as a header:
/// `type/subtype` with optional parameters, printable ASCII, at most 127
/// bytes. Refused as [`MediaError::Rejected`] ("invalid content type").
pub fn validate_content_type(content_type: &str) -> Result<(), MediaError> {
    let printable = content_type.bytes().all(|b| (0x20..0x7f).contains(&b));
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let well_formed = essence
        .split_once('/')
        .is_some_and(|(kind, sub)| !kind.is_empty() && !sub.is_empty() && !sub.contains('/'));
    if printable && well_formed && content_type.len() <= 127 {
        Ok(())
    } else {
        Err(MediaError::Rejected(format!(
            "invalid content type {content_type:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_keys() {
        for key in [
            "a",
            "cover.jpg",
            "gigs/0192f3a4-7b1c-7def-8a9b-0123456789ab/cover.webp",
            "gigs/42/1_thumb-small.v2.png",
            &"k".repeat(MAX_KEY_LEN),
        ] {
            assert!(validate_key(key).is_ok(), "{key}");
        }
    }

    #[test]
    fn content_types() {
        for good in ["image/png", "image/jpeg", "text/plain; charset=utf-8"] {
            assert!(validate_content_type(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "png",
            "image/",
            "/png",
            "a/b/c",
            "image/png\r\nX-Evil: 1",
            "image/p\u{e9}",
        ] {
            assert!(validate_content_type(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_keys() {
        for key in [
            "",
            "/etc/passwd",
            "../secret",
            "gigs/../../secret",
            "gigs/..",
            "..",
            ".",
            "./a",
            "a/./b",
            "gigs//a.jpg",
            "gigs/",
            ".hidden",
            "gigs/.a.jpg.tmp",
            "Gigs/a.jpg",
            "gigs\\a.jpg",
            "gigs/a b.jpg",
            "gigs/a%2e%2e",
            "gigs/a?x=1",
            "gigs/a#b",
            "gigs/é.jpg",
            "gigs/a\0b",
            "c:/a",
            &"k".repeat(MAX_KEY_LEN + 1),
        ] {
            match validate_key(key) {
                Err(MediaError::Rejected(message)) => {
                    assert!(message.starts_with("invalid media key"), "{message}")
                }
                other => panic!("{key:?} accepted: {other:?}"),
            }
        }
    }
}
