//! Gig images end to end, once on the local media store and once on S3 (a
//! real `moto_server`, see `helpers::MotoServer`): the type comes from the
//! bytes, whatever the `Content-Type` says; anything refused leaves nothing
//! stored and the gig unchanged; `/media/...` serves the bytes (local) or
//! redirects to a presigned S3 address that does.

use gateway::config::{MediaBackend, Settings};
use image::ImageFormat;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{eventually, gig_body, image_bytes, noise_png, TestApp};

backend_tests! {
    images_on_local_storage with small_uploads,
    images_on_s3 with small_uploads on S3,
}

/// `media.max_upload_bytes` in these tests.
const MAX_UPLOAD: usize = 64 * 1024;

fn small_uploads(settings: &mut Settings) {
    settings.media.max_upload_bytes = MAX_UPLOAD;
}

async fn images_on_local_storage(app: TestApp) {
    assert_eq!(app.state.settings.media.backend, MediaBackend::Local);
    assert_eq!(app.state.media.name(), "local");
    images(app).await;
}

async fn images_on_s3(app: TestApp) {
    assert_eq!(app.state.settings.media.backend, MediaBackend::S3);
    assert_eq!(app.state.media.name(), "s3");
    images(app).await;
}

fn str_of<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {value}"))
}

/// The keys of a gig's images, sorted.
fn media_keys(gig: &Value) -> Vec<String> {
    let mut keys: Vec<String> = gig["media"]
        .as_array()
        .unwrap_or_else(|| panic!("no media in {gig}"))
        .iter()
        .map(|m| str_of(m, "key").to_string())
        .collect();
    keys.sort();
    keys
}

/// Fetches `url` and checks it serves `bytes` as `content_type`, the way
/// this backend serves media.
async fn assert_served(app: &TestApp, url: &str, content_type: &str, bytes: &[u8]) {
    let served = app
        .fetch_media(url)
        .await
        .unwrap_or_else(|| panic!("{url} is not served"));
    assert_eq!(served.content_type, content_type, "{url}");
    assert!(served.bytes == bytes, "{url} serves other bytes");
    let settings = &app.state.settings.media;
    match settings.backend {
        MediaBackend::Local => {
            assert_eq!(served.redirected_to, None);
            assert_eq!(
                served
                    .headers
                    .get("x-content-type-options")
                    .and_then(|v| v.to_str().ok()),
                Some("nosniff")
            );
            assert!(served
                .headers
                .get("cache-control")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("immutable")));
        }
        MediaBackend::S3 => {
            let location = served
                .redirected_to
                .unwrap_or_else(|| panic!("{url} was not redirected to S3"));
            let object = format!("{}/{}/", settings.s3_endpoint, settings.s3_bucket);
            assert!(location.starts_with(&object), "{location}");
            assert!(location.contains("X-Amz-Signature="), "{location}");
        }
    }
}

async fn images(app: TestApp) {
    let (_, tokens) = app.seller("ada").await;
    let (_, other) = app.seller("grace").await;
    let gig = app
        .create_gig_ok(
            &tokens.access,
            &gig_body(
                "I will design a clean logo for your company",
                "graphics-design",
                "logo-design",
            ),
        )
        .await;
    let id = str_of(&gig, "id").to_string();
    assert!(app.stored_media().await.is_empty());

    // A PNG: stored, described, served to anyone.
    let png = image_bytes(160, 120, ImageFormat::Png);
    let with_png = app
        .upload_media(&tokens.access, &id, Some("image/png"), png.clone())
        .await
        .expect(201);
    assert_eq!(with_png["version"], 2);
    let media = with_png["media"].as_array().expect("media");
    assert_eq!(media.len(), 1, "{with_png}");
    let first = &media[0];
    let key = str_of(first, "key").to_string();
    assert!(
        key.starts_with(&format!("gigs/{id}/")) && key.ends_with(".png"),
        "{key}"
    );
    assert_eq!(first["url"], format!("/media/{key}"));
    assert_eq!(first["content_type"], "image/png");
    assert_eq!(
        (first["width"].as_u64(), first["height"].as_u64()),
        (Some(160), Some(120))
    );
    assert_eq!(first["bytes"].as_u64(), Some(png.len() as u64));
    assert_eq!(app.stored_media().await, [key.as_str()]);
    assert_served(&app, str_of(first, "url"), "image/png", &png).await;
    assert_eq!(app.gig(None, &id).await.expect(200), with_png);

    // The type comes from the bytes, not from the header.
    let jpeg = image_bytes(200, 100, ImageFormat::Jpeg);
    let with_jpeg = app
        .upload_media(
            &tokens.access,
            &id,
            Some("application/octet-stream"),
            jpeg.clone(),
        )
        .await
        .expect(201);
    let webp = image_bytes(120, 120, ImageFormat::WebP);
    let with_webp = app
        .upload_media(&tokens.access, &id, Some("image/png"), webp.clone())
        .await
        .expect(201);
    let jpeg_media = &with_jpeg["media"][1];
    let webp_media = &with_webp["media"][2];
    assert_eq!(jpeg_media["content_type"], "image/jpeg");
    assert!(str_of(jpeg_media, "key").ends_with(".jpeg"));
    assert_eq!(webp_media["content_type"], "image/webp");
    assert!(str_of(webp_media, "key").ends_with(".webp"));
    assert_eq!(
        (webp_media["width"].as_u64(), webp_media["height"].as_u64()),
        (Some(120), Some(120))
    );
    assert_served(&app, str_of(jpeg_media, "url"), "image/jpeg", &jpeg).await;
    assert_served(&app, str_of(webp_media, "url"), "image/webp", &webp).await;

    let before = app.gig(Some(&tokens.access), &id).await.expect(200);
    assert_eq!(before["version"], 4);
    let stored = app.stored_media().await;
    assert_eq!(stored, media_keys(&before));
    let unchanged = || async {
        assert_eq!(app.gig(Some(&tokens.access), &id).await.expect(200), before);
        assert_eq!(app.stored_media().await, stored);
    };

    // Refused uploads store nothing and leave the gig as it was.
    let gif: Vec<u8> = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;".to_vec();
    let text = b"this is not an image, whatever the header says".to_vec();
    // The PNG signature and a valid header chunk, then garbage.
    let mut corrupt_png = png[..33].to_vec();
    corrupt_png.extend(std::iter::repeat_n(0xA5, 2000));
    let mut truncated_png = png.clone();
    truncated_png.truncate(png.len() / 2);
    let too_small = image_bytes(60, 60, ImageFormat::Png);
    for (what, bytes) in [
        ("a GIF", gif),
        ("text", text),
        ("a corrupt PNG", corrupt_png),
        ("half a PNG", truncated_png),
        ("a PNG under 100 pixels wide", too_small),
        ("an empty body", Vec::new()),
    ] {
        let reply = app
            .upload_media(&tokens.access, &id, Some("image/png"), bytes)
            .await;
        reply.expect_error(422, "validation_failed");
        assert_eq!(reply.error_fields(), ["image"], "{what}");
        unchanged().await;
    }

    let oversize = noise_png(200, 200);
    assert!(oversize.len() > MAX_UPLOAD, "{}", oversize.len());
    app.upload_media(&tokens.access, &id, Some("image/png"), oversize)
        .await
        .expect_error(413, "payload_too_large");
    unchanged().await;

    // Only the seller adds images.
    app.upload_media(&other.access, &id, Some("image/png"), png.clone())
        .await
        .expect_error(403, "forbidden");
    app.send(
        app.request(reqwest::Method::POST, &format!("/api/v1/gigs/{id}/media"))
            .header("content-type", "image/png")
            .body(png.clone()),
    )
    .await
    .expect_error(401, "unauthorized");
    let unknown = Uuid::now_v7().to_string();
    app.upload_media(&tokens.access, &unknown, Some("image/png"), png.clone())
        .await
        .expect_error(404, "not_found");
    unchanged().await;

    // Five images at most; the sixth is refused and not kept.
    let mut full = before.clone();
    for (width, height) in [(100, 100), (300, 200)] {
        full = app
            .upload_media(
                &tokens.access,
                &id,
                None,
                image_bytes(width, height, ImageFormat::Png),
            )
            .await
            .expect(201);
    }
    assert_eq!(full["media"].as_array().map(Vec::len), Some(5));
    assert_eq!(full["version"], 6);
    let sixth = app
        .upload_media(&tokens.access, &id, Some("image/png"), png.clone())
        .await;
    sixth.expect_error(422, "validation_failed");
    assert_eq!(app.gig(Some(&tokens.access), &id).await.expect(200), full);
    assert_eq!(app.stored_media().await, media_keys(&full));

    // Removing an image: its seller only, then it is gone everywhere.
    let name = key.rsplit('/').next().expect("a file name");
    let one = format!("/api/v1/gigs/{id}/media/{name}");
    app.delete_as(&other.access, &one)
        .await
        .expect_error(403, "forbidden");
    app.delete_as(
        &tokens.access,
        &format!("/api/v1/gigs/{id}/media/missing.png"),
    )
    .await
    .expect_error(404, "not_found");
    assert_eq!(app.gig(Some(&tokens.access), &id).await.expect(200), full);
    let removed = app.delete_as(&tokens.access, &one).await.expect(200);
    assert_eq!(removed["version"], 7);
    let remaining = media_keys(&removed);
    assert_eq!(remaining.len(), 4);
    assert!(!remaining.contains(&key), "{removed}");
    assert_eq!(removed["media"][0]["content_type"], "image/jpeg");
    assert_eq!(app.gig(None, &id).await.expect(200), removed);
    let url = format!("/media/{key}");
    eventually(&format!("{url} answering 404"), || async {
        match app.fetch_media(&url).await {
            None => Ok(()),
            Some(served) => Err(format!("still served ({} bytes)", served.bytes.len())),
        }
    })
    .await;
    eventually("the removed image leaving the store", || async {
        let stored = app.stored_media().await;
        if stored == remaining {
            Ok(())
        } else {
            Err(format!("{stored:?}"))
        }
    })
    .await;
    for key in &remaining {
        assert!(
            app.fetch_media(&format!("/media/{key}")).await.is_some(),
            "{key}"
        );
    }

    // Keys that are not media keys, or name nothing.
    for missing in [
        "/media/gigs/nothing.png".to_string(),
        format!("/media/gigs/{id}/UPPER.png"),
        "/media/gigs/..%2F..%2Fetc/passwd".to_string(),
        "/media/.hidden".to_string(),
    ] {
        assert!(app.fetch_media(&missing).await.is_none(), "{missing}");
    }

    // Deleting the gig deletes its images.
    let deleted = app
        .delete_as(&tokens.access, &format!("/api/v1/gigs/{id}"))
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    eventually("the deleted gig's images leaving the store", || async {
        let stored = app.stored_media().await;
        if stored.is_empty() {
            Ok(())
        } else {
            Err(format!("{stored:?}"))
        }
    })
    .await;
    for key in &remaining {
        assert!(app.fetch_media(&format!("/media/{key}")).await.is_none());
    }
}
