//! The media stores end to end: one scenario set run against
//! `LocalMediaStore` (a temporary directory) and `S3MediaStore` (a real
//! `moto_server` on loopback, installed by `scripts/test.sh`). A fetched
//! location is followed the way a client would: bytes are read as they are,
//! a redirect is fetched over HTTP with no credentials.

use std::future::Future;
use std::io::Cursor;
use std::path::Path;
use std::time::{Duration, Instant};

use adapters::media::{inspect, ImageLimits, LocalMediaStore, S3MediaStore, S3Settings};
use domain::ports::{MediaError, MediaLocation, MediaStore};
use tempfile::TempDir;

use crate::service::{self, free_port, Service};

// ---------------------------------------------------------------------------
// Content
// ---------------------------------------------------------------------------

/// A real image of the given format, checked the way an upload is.
fn image(width: u32, height: u32, format: image::ImageFormat) -> (&'static str, Vec<u8>) {
    let picture = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 3) as u8, (y * 7) as u8, ((x ^ y) * 5) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    picture.write_to(&mut out, format).unwrap();
    let bytes = out.into_inner();
    let info = inspect(&bytes, &ImageLimits::default()).unwrap();
    (info.content_type, bytes)
}

fn png() -> (&'static str, Vec<u8>) {
    image(160, 120, image::ImageFormat::Png)
}

fn jpeg() -> (&'static str, Vec<u8>) {
    image(200, 100, image::ImageFormat::Jpeg)
}

fn webp() -> (&'static str, Vec<u8>) {
    image(120, 120, image::ImageFormat::WebP)
}

const BAD_KEYS: &[&str] = &[
    "",
    "/etc/passwd",
    "../escape.png",
    "gigs/../../escape.png",
    "gigs/..",
    "./a.png",
    "gigs//a.png",
    "gigs/",
    ".hidden",
    "gigs/.cover.png.type",
    "Gigs/A.png",
    "gigs\\a.png",
    "gigs/a b.png",
    "gigs/a%2F..",
    "gigs/a?x=1",
];

// ---------------------------------------------------------------------------
// The stores under test
// ---------------------------------------------------------------------------

/// A store and whatever must live as long as it does.
struct Subject {
    store: Box<dyn MediaStore>,
    _dir: Option<TempDir>,
    _moto: Option<MotoServer>,
}

async fn local() -> Subject {
    let dir = TempDir::new().unwrap();
    let store = LocalMediaStore::new(dir.path().join("media")).unwrap();
    Subject {
        store: Box::new(store),
        _dir: Some(dir),
        _moto: None,
    }
}

async fn s3() -> Subject {
    let moto = MotoServer::start();
    let store = moto.store("media-test", "us-east-1").await;
    store.ensure_bucket().await.unwrap();
    Subject {
        store: Box::new(store),
        _dir: None,
        _moto: Some(moto),
    }
}

/// A `moto_server` process (S3 and DynamoDB APIs); killed on drop. The
/// store suite runs its DynamoDB session scenarios on one too.
pub(crate) struct MotoServer {
    service: Service,
}

impl MotoServer {
    pub(crate) fn start() -> Self {
        MotoServer {
            service: service::moto_server(),
        }
    }

    /// One request at a time (see [`service::moto_server_serial`]).
    pub(crate) fn start_serial() -> Self {
        MotoServer {
            service: service::moto_server_serial(),
        }
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.service.port())
    }

    fn settings(&self, bucket: &str, region: &str) -> S3Settings {
        S3Settings {
            bucket: bucket.into(),
            region: region.into(),
            endpoint: Some(self.endpoint()),
            access_key_id: Some("testing".into()),
            secret_access_key: Some("testing-secret".to_owned().into()),
            force_path_style: true,
            presign_ttl: Duration::from_secs(300),
        }
    }

    async fn store(&self, bucket: &str, region: &str) -> S3MediaStore {
        S3MediaStore::new(self.settings(bucket, region))
            .await
            .unwrap()
    }
}

/// Follows a location as a client would: (content type, bytes).
async fn follow(location: MediaLocation) -> (String, Vec<u8>) {
    match location {
        MediaLocation::Bytes {
            content_type,
            bytes,
        } => (content_type, bytes),
        MediaLocation::Redirect(url) => {
            let response = reqwest::get(&url).await.unwrap();
            assert_eq!(response.status(), 200, "GET {url}");
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .expect("a content type")
                .to_str()
                .unwrap()
                .to_owned();
            (content_type, response.bytes().await.unwrap().to_vec())
        }
    }
}

async fn fetched(store: &dyn MediaStore, key: &str) -> Option<(String, Vec<u8>)> {
    match store.fetch(key).await.unwrap() {
        Some(location) => Some(follow(location).await),
        None => None,
    }
}

fn is_rejected<T: std::fmt::Debug>(result: Result<T, MediaError>) -> bool {
    match result {
        Err(MediaError::Rejected(message)) => message.starts_with("invalid media key"),
        other => panic!("expected a rejected key, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// The scenarios, the same for every store
// ---------------------------------------------------------------------------

async fn put_fetch_delete(store: &dyn MediaStore) {
    let key = "gigs/0192f3a4-7b1c-7def-8a9b-0123456789ab/cover.png";
    let (content_type, bytes) = png();
    assert_eq!(content_type, "image/png");
    assert_eq!(store.fetch(key).await.unwrap(), None);
    store.put(key, content_type, bytes.clone()).await.unwrap();
    assert_eq!(
        fetched(store, key).await,
        Some((content_type.to_owned(), bytes.clone()))
    );
    // A second fetch answers the same.
    assert_eq!(
        fetched(store, key).await,
        Some((content_type.to_owned(), bytes))
    );
    store.delete(key).await.unwrap();
    assert_eq!(store.fetch(key).await.unwrap(), None);
}

async fn every_image_type_round_trips(store: &dyn MediaStore) {
    for (key, (content_type, bytes)) in [
        ("gigs/7/a.jpg", jpeg()),
        ("gigs/7/b.png", png()),
        ("gigs/7/c.webp", webp()),
    ] {
        store.put(key, content_type, bytes.clone()).await.unwrap();
        assert_eq!(
            fetched(store, key).await,
            Some((content_type.to_owned(), bytes)),
            "{key}"
        );
    }
}

async fn deleting_is_idempotent(store: &dyn MediaStore) {
    store.delete("gigs/never/stored.png").await.unwrap();
    let (content_type, bytes) = jpeg();
    store
        .put("gigs/8/photo.jpg", content_type, bytes)
        .await
        .unwrap();
    store.delete("gigs/8/photo.jpg").await.unwrap();
    store.delete("gigs/8/photo.jpg").await.unwrap();
    assert_eq!(store.fetch("gigs/8/photo.jpg").await.unwrap(), None);
}

async fn putting_again_replaces(store: &dyn MediaStore) {
    let key = "gigs/9/cover";
    let (png_type, png_bytes) = png();
    let (jpeg_type, jpeg_bytes) = jpeg();
    store.put(key, png_type, png_bytes).await.unwrap();
    store.put(key, jpeg_type, jpeg_bytes.clone()).await.unwrap();
    assert_eq!(
        fetched(store, key).await,
        Some((jpeg_type.to_owned(), jpeg_bytes))
    );
}

async fn keys_are_independent(store: &dyn MediaStore) {
    let (content_type, bytes) = png();
    let keys = ["gigs/1/a.png", "gigs/1/b.png", "gigs/2/a.png", "a.png"];
    for (i, key) in keys.iter().enumerate() {
        let mut distinct = bytes.clone();
        // Trailing bytes after IEND keep it a PNG and make each object unique.
        distinct.push(i as u8);
        store.put(key, content_type, distinct).await.unwrap();
    }
    store.delete("gigs/1/a.png").await.unwrap();
    assert_eq!(store.fetch("gigs/1/a.png").await.unwrap(), None);
    for (i, key) in keys.iter().enumerate().skip(1) {
        let (_, got) = fetched(store, key).await.unwrap();
        assert_eq!(got.last(), Some(&(i as u8)), "{key}");
    }
    // A prefix of other keys is not an object.
    assert_eq!(store.fetch("gigs/1").await.unwrap(), None);
    assert_eq!(store.fetch("gigs").await.unwrap(), None);
    store.delete("gigs/2").await.unwrap();
    assert!(fetched(store, "gigs/2/a.png").await.is_some());
    // Nor is anything below an object.
    assert_eq!(store.fetch("a.png/below").await.unwrap(), None);
    store.delete("a.png/below").await.unwrap();
}

async fn bad_keys_are_rejected(store: &dyn MediaStore) {
    let (content_type, bytes) = png();
    for key in BAD_KEYS {
        assert!(is_rejected(
            store.put(key, content_type, bytes.clone()).await
        ));
        assert!(is_rejected(store.fetch(key).await));
        assert!(is_rejected(store.delete(key).await));
    }
}

async fn bad_content_types_are_rejected(store: &dyn MediaStore) {
    let (_, bytes) = png();
    for content_type in ["", "png", "image/png\r\nX-Injected: 1"] {
        match store.put("gigs/1/x.png", content_type, bytes.clone()).await {
            Err(MediaError::Rejected(message)) => {
                assert!(message.starts_with("invalid content type"), "{message}")
            }
            other => panic!("{content_type:?} accepted: {other:?}"),
        }
    }
    assert_eq!(store.fetch("gigs/1/x.png").await.unwrap(), None);
}

async fn any_bytes_round_trip(store: &dyn MediaStore) {
    // The stores keep bytes as given; checking them is `inspect`'s job.
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    store
        .put(
            "blobs/all-bytes.bin",
            "application/octet-stream",
            bytes.clone(),
        )
        .await
        .unwrap();
    assert_eq!(
        fetched(store, "blobs/all-bytes.bin").await,
        Some(("application/octet-stream".to_owned(), bytes))
    );
    store
        .put("blobs/empty", "text/plain", Vec::new())
        .await
        .unwrap();
    assert_eq!(
        fetched(store, "blobs/empty").await,
        Some(("text/plain".to_owned(), Vec::new()))
    );
}

async fn concurrent_puts(store: &dyn MediaStore) {
    let (content_type, bytes) = webp();
    let puts = (0..16).map(|i| {
        let bytes = bytes.clone();
        async move {
            store
                .put(&format!("gigs/c/{i}.webp"), content_type, bytes)
                .await
        }
    });
    for result in futures_join_all(puts).await {
        result.unwrap();
    }
    for i in 0..16 {
        assert_eq!(
            fetched(store, &format!("gigs/c/{i}.webp")).await,
            Some((content_type.to_owned(), bytes.clone()))
        );
    }
}

/// Runs the futures concurrently on the current task.
async fn futures_join_all<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for future in futures {
        set.push(Box::pin(future));
    }
    let mut outputs: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in set.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

macro_rules! scenarios {
    ($backend:ident: $($scenario:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let subject = super::$backend().await;
                    super::$scenario(subject.store.as_ref()).await;
                }
            )*
        }
    };
}

scenarios!(local:
    put_fetch_delete,
    every_image_type_round_trips,
    deleting_is_idempotent,
    putting_again_replaces,
    keys_are_independent,
    bad_keys_are_rejected,
    bad_content_types_are_rejected,
    any_bytes_round_trip,
    concurrent_puts,
);

scenarios!(s3:
    put_fetch_delete,
    every_image_type_round_trips,
    deleting_is_idempotent,
    putting_again_replaces,
    keys_are_independent,
    bad_keys_are_rejected,
    bad_content_types_are_rejected,
    any_bytes_round_trip,
    concurrent_puts,
);

// ---------------------------------------------------------------------------
// The local directory
// ---------------------------------------------------------------------------

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap();
                found.push(relative.display().to_string());
            }
        }
    }
    found.sort();
    found
}

#[tokio::test]
async fn local_files_are_plain_with_a_type_sidecar() {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("data/media");
    let store = LocalMediaStore::new(root.clone()).unwrap();
    assert!(root.is_dir(), "created on start");
    assert_eq!(store.name(), "local");
    let (content_type, bytes) = png();
    store
        .put("gigs/5/cover.png", content_type, bytes.clone())
        .await
        .unwrap();
    assert_eq!(std::fs::read(root.join("gigs/5/cover.png")).unwrap(), bytes);
    assert_eq!(
        files_under(&root),
        ["gigs/5/.cover.png.type", "gigs/5/cover.png"],
        "no temporary files left behind"
    );
    store.delete("gigs/5/cover.png").await.unwrap();
    assert!(files_under(&root).is_empty(), "{:?}", files_under(&root));
}

#[tokio::test]
async fn local_bad_keys_touch_nothing_outside() {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("media");
    let store = LocalMediaStore::new(root.clone()).unwrap();
    std::fs::write(dir.path().join("escape.png"), b"outside").unwrap();
    let (content_type, bytes) = png();
    for key in BAD_KEYS {
        let _ = store.put(key, content_type, bytes.clone()).await;
        let _ = store.delete(key).await;
    }
    assert_eq!(
        std::fs::read(dir.path().join("escape.png")).unwrap(),
        b"outside"
    );
    assert_eq!(files_under(dir.path()), ["escape.png"]);
}

#[tokio::test]
async fn local_objects_outlive_the_store() {
    let dir = TempDir::new().unwrap();
    let (content_type, bytes) = webp();
    LocalMediaStore::new(dir.path().to_path_buf())
        .unwrap()
        .put("gigs/3/a.webp", content_type, bytes.clone())
        .await
        .unwrap();
    let reopened = LocalMediaStore::new(dir.path().to_path_buf()).unwrap();
    assert_eq!(
        fetched(&reopened, "gigs/3/a.webp").await,
        Some((content_type.to_owned(), bytes))
    );
}

#[tokio::test]
async fn local_object_without_its_sidecar_is_served_as_octet_stream() {
    let dir = TempDir::new().unwrap();
    let store = LocalMediaStore::new(dir.path().to_path_buf()).unwrap();
    std::fs::create_dir_all(dir.path().join("gigs")).unwrap();
    std::fs::write(dir.path().join("gigs/copied.png"), b"copied in by hand").unwrap();
    assert_eq!(
        fetched(&store, "gigs/copied.png").await,
        Some((
            "application/octet-stream".to_owned(),
            b"copied in by hand".to_vec()
        ))
    );
}

#[test]
fn local_store_on_a_file_fails() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    match LocalMediaStore::new(file.join("media")) {
        Err(MediaError::Backend(message)) => assert!(message.contains("not-a-dir"), "{message}"),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------
// S3 (moto_server)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn s3_redirect_is_a_presigned_get_that_stops_working_after_delete() {
    let moto = MotoServer::start();
    let store = moto.store("media-presign", "us-east-1").await;
    store.ensure_bucket().await.unwrap();
    assert_eq!(store.name(), "s3");
    let (content_type, bytes) = jpeg();
    store
        .put("gigs/4/cover.jpg", content_type, bytes.clone())
        .await
        .unwrap();
    let Some(MediaLocation::Redirect(url)) = store.fetch("gigs/4/cover.jpg").await.unwrap() else {
        panic!("expected a redirect");
    };
    let prefix = format!("{}/media-presign/gigs/4/cover.jpg?", moto.endpoint());
    assert!(url.starts_with(&prefix), "{url}");
    assert!(url.contains("X-Amz-Expires=300"), "{url}");
    assert!(url.contains("X-Amz-Signature="), "{url}");
    assert!(!url.contains("testing-secret"), "{url}");
    assert_eq!(
        follow(MediaLocation::Redirect(url.clone())).await,
        (content_type.to_owned(), bytes)
    );

    store.delete("gigs/4/cover.jpg").await.unwrap();
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn s3_ensure_bucket_creates_once_in_any_region() {
    let moto = MotoServer::start();
    for region in ["us-east-1", "eu-west-1"] {
        let bucket = format!("media-{region}");
        let store = moto.store(&bucket, region).await;
        // Missing: nothing can be stored yet.
        let (content_type, bytes) = png();
        match store.put("a.png", content_type, bytes.clone()).await {
            Err(MediaError::Backend(message)) => assert!(message.contains(&bucket), "{message}"),
            other => panic!("{other:?}"),
        }
        store.ensure_bucket().await.unwrap();
        store.ensure_bucket().await.unwrap();
        store
            .put("a.png", content_type, bytes.clone())
            .await
            .unwrap();
        // Another instance starting against the same bucket keeps the data.
        let other = moto.store(&bucket, region).await;
        other.ensure_bucket().await.unwrap();
        assert_eq!(
            fetched(&other, "a.png").await,
            Some((content_type.to_owned(), bytes))
        );
    }
}

#[tokio::test]
async fn s3_unreachable_endpoint_fails_promptly() {
    let port = free_port();
    let store = S3MediaStore::new(S3Settings {
        bucket: "media".into(),
        region: "us-east-1".into(),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        access_key_id: Some("testing".into()),
        secret_access_key: Some("testing-secret".to_owned().into()),
        force_path_style: true,
        presign_ttl: Duration::from_secs(60),
    })
    .await
    .unwrap();
    let started = Instant::now();
    let (content_type, bytes) = png();
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        store.put("a.png", content_type, bytes),
    )
    .await
    .expect("put must not hang");
    assert!(matches!(result, Err(MediaError::Backend(_))), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(15));
    let result = store.ensure_bucket().await;
    assert!(matches!(result, Err(MediaError::Backend(_))), "{result:?}");
}
