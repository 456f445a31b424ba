//! Checking an uploaded image before it is stored.
//!
//! The order matters: the cheap checks come first so that a hostile file
//! costs as little as possible.
//!
//! 1. the size in bytes;
//! 2. the type, from the magic numbers at the start of the bytes (a client's
//!    `Content-Type` or file name is never trusted): JPEG, PNG or WebP;
//! 3. the dimensions, read from the header alone, against the side and pixel
//!    limits, so a small file claiming a huge canvas (a decompression bomb) is
//!    refused before anything is allocated for its pixels;
//! 4. a full decode, held to the checked dimensions (`image::Limits`; strict
//!    mode for JPEG), so a file with a plausible header and corrupt or
//!    truncated data is refused too.
//!
//! Decoding is CPU work: call [`inspect`] from a blocking thread
//! (`tokio::task::spawn_blocking`), not on the async runtime.

use std::io::Cursor;

use domain::ports::MediaError;
use image::{ImageFormat, ImageReader, Limits};

/// What [`inspect`] accepts. The defaults suit gig images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageLimits {
    /// The largest file, in bytes (default 5 MiB).
    pub max_bytes: usize,
    /// The most pixels, width × height (default 40 megapixels).
    pub max_pixels: u64,
    /// The longest either side may be, in pixels (default 10 000).
    pub max_side: u32,
    /// The shortest either side may be, in pixels (default 100).
    pub min_side: u32,
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self {
            max_bytes: 5 * 1024 * 1024,
            max_pixels: 40_000_000,
            max_side: 10_000,
            min_side: 100,
        }
    }
}

/// An accepted image: its type as decided from its bytes, and its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// `image/jpeg`, `image/png` or `image/webp`.
    pub content_type: &'static str,
    pub width: u32,
    pub height: u32,
}

/// The accepted types, recognised by their first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Jpeg,
    Png,
    Webp,
}

impl Kind {
    fn sniff(bytes: &[u8]) -> Option<Kind> {
        const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Kind::Jpeg)
        } else if bytes.starts_with(PNG) {
            Some(Kind::Png)
        } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(Kind::Webp)
        } else {
            None
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Kind::Jpeg => "image/jpeg",
            Kind::Png => "image/png",
            Kind::Webp => "image/webp",
        }
    }

    fn format(self) -> ImageFormat {
        match self {
            Kind::Jpeg => ImageFormat::Jpeg,
            Kind::Png => ImageFormat::Png,
            Kind::Webp => ImageFormat::WebP,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Jpeg => "JPEG",
            Kind::Png => "PNG",
            Kind::Webp => "WebP",
        }
    }
}

/// Checks that `bytes` are a complete, decodable JPEG, PNG or WebP image
/// within `limits`. Every refusal is a [`MediaError::Rejected`] whose text
/// can be shown to the uploader as it is.
pub fn inspect(bytes: &[u8], limits: &ImageLimits) -> Result<ImageInfo, MediaError> {
    if bytes.len() > limits.max_bytes {
        return Err(rejected(format!(
            "The image is too large: {} bytes; the limit is {} ({} bytes)",
            bytes.len(),
            human_bytes(limits.max_bytes),
            limits.max_bytes
        )));
    }
    let Some(kind) = Kind::sniff(bytes) else {
        return Err(rejected(
            "The file is not a supported image: it must be a JPEG, PNG or WebP image".into(),
        ));
    };
    let corrupt = || {
        rejected(format!(
            "The file looks like a {} image but is corrupt or truncated and cannot be read",
            kind.label()
        ))
    };

    // The header alone, nothing allocated for the pixels yet.
    let header = read_header(kind, bytes).ok_or_else(corrupt)?;
    let (width, height) = (header.width, header.height);
    check_dimensions(width, height, limits)?;
    if !header.complete {
        return Err(corrupt());
    }

    let decoded = match kind {
        Kind::Jpeg => decode_jpeg(bytes, width, height),
        Kind::Png | Kind::Webp => decode(kind, bytes, width, height),
    };
    if decoded != Some((width, height)) {
        // Undecodable, or a size other than the header's.
        return Err(corrupt());
    }
    Ok(ImageInfo {
        content_type: kind.content_type(),
        width,
        height,
    })
}

/// Decodes the whole image with the decoder held to the dimensions already
/// checked and to the memory they justify (16-bit RGBA at most: 8 bytes a
/// pixel); the decoded size, or `None` if it cannot be decoded.
fn decode(kind: Kind, bytes: &[u8], width: u32, height: u32) -> Option<(u32, u32)> {
    let pixels = u64::from(width) * u64::from(height);
    let mut limits = Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    limits.max_alloc = Some(pixels.saturating_mul(8).saturating_add(16 * 1024 * 1024));
    let mut reader = ImageReader::with_format(Cursor::new(bytes), kind.format());
    reader.limits(limits);
    let image = reader.decode().ok()?;
    Some((image.width(), image.height()))
}

/// JPEG goes to zune-jpeg directly, in strict mode: the `image` crate runs
/// it leniently, filling whatever it cannot decode with grey, so corrupt
/// entropy-coded data or a premature end would pass.
fn decode_jpeg(bytes: &[u8], width: u32, height: u32) -> Option<(u32, u32)> {
    let options = zune_core::options::DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(width as usize)
        .set_max_height(height as usize);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(
        zune_core::bytestream::ZCursor::new(bytes),
        options,
    );
    decoder.decode().ok()?;
    let (w, h) = decoder.dimensions()?;
    Some((u32::try_from(w).ok()?, u32::try_from(h).ok()?))
}

/// What the header says, before any pixel is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    width: u32,
    height: u32,
    /// False when the structure already shows the file is cut short (a JPEG
    /// without its end marker; the other decoders notice by themselves).
    complete: bool,
}

/// The dimensions from the header, or `None` if the header is malformed or
/// claims an empty image.
fn read_header(kind: Kind, bytes: &[u8]) -> Option<Header> {
    let header = match kind {
        Kind::Png => png_header(bytes),
        Kind::Webp => webp_header(bytes),
        Kind::Jpeg => jpeg_header(bytes),
    }?;
    (header.width > 0 && header.height > 0).then_some(header)
}

fn u16_be(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 2)?;
    Some(u32::from(u16::from_be_bytes([b[0], b[1]])))
}

fn u32_be(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn u16_le(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 2)?;
    Some(u32::from(u16::from_le_bytes([b[0], b[1]])))
}

fn u24_le(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 3)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], 0]))
}

fn u32_le(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The signature, then the IHDR chunk, which must come first.
fn png_header(bytes: &[u8]) -> Option<Header> {
    if bytes.get(12..16)? != b"IHDR" {
        return None;
    }
    Some(Header {
        width: u32_be(bytes, 16)?,
        height: u32_be(bytes, 20)?,
        complete: true,
    })
}

/// `RIFF <size> WEBP` and then the first chunk: a lossy (`VP8 `), lossless
/// (`VP8L`) or extended (`VP8X`) header.
fn webp_header(bytes: &[u8]) -> Option<Header> {
    let (width, height) = match bytes.get(12..16)? {
        b"VP8 " => {
            // 3 bytes of frame tag, then the key frame start code.
            if bytes.get(23..26)? != [0x9d, 0x01, 0x2a] {
                return None;
            }
            (u16_le(bytes, 26)? & 0x3fff, u16_le(bytes, 28)? & 0x3fff)
        }
        b"VP8L" => {
            if *bytes.get(20)? != 0x2f {
                return None;
            }
            let bits = u32_le(bytes, 21)?;
            ((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1)
        }
        b"VP8X" => (u24_le(bytes, 24)? + 1, u24_le(bytes, 27)? + 1),
        _ => return None,
    };
    Some(Header {
        width,
        height,
        complete: true,
    })
}

/// Walks the JPEG's marker segments to the first frame header (SOFn) for
/// the size, and on through every scan to the end-of-image marker: a file
/// without one is truncated, which the lenient JPEG decoder would not say.
fn jpeg_header(bytes: &[u8]) -> Option<Header> {
    let mut size: Option<(u32, u32)> = None;
    let finish = |size: Option<(u32, u32)>, complete: bool| {
        size.map(|(width, height)| Header {
            width,
            height,
            complete,
        })
    };
    let mut at = 2; // after SOI
    loop {
        match bytes.get(at) {
            None => return finish(size, false),
            Some(0xFF) => {}
            Some(_) => return None,
        }
        // Any number of 0xFF fill bytes may precede a marker.
        while bytes.get(at) == Some(&0xFF) {
            at += 1;
        }
        let Some(&marker) = bytes.get(at) else {
            return finish(size, false);
        };
        at += 1;
        match marker {
            0xD9 => return finish(size, true),
            // Markers without a segment.
            0x01 | 0xD0..=0xD8 => continue,
            _ => {}
        }
        let Some(length) = u16_be(bytes, at) else {
            return finish(size, false);
        };
        let length = length as usize;
        if length < 2 {
            return None;
        }
        let end = at + length;
        let is_frame = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_frame && size.is_none() {
            // length, precision, height, width
            let height = u16_be(bytes, at + 3)?;
            let width = u16_be(bytes, at + 5)?;
            size = Some((width, height));
        }
        if end > bytes.len() {
            return finish(size, false);
        }
        at = end;
        if marker == 0xDA {
            // A scan before any frame header is malformed.
            size?;
            // Entropy-coded data: 0xFF only appears stuffed (FF 00) or as a
            // restart marker until the next real marker.
            loop {
                let Some(offset) = bytes[at..].iter().position(|&b| b == 0xFF) else {
                    return finish(size, false);
                };
                let i = at + offset;
                match bytes.get(i + 1) {
                    None => return finish(size, false),
                    Some(0x00 | 0xD0..=0xD7) => at = i + 2,
                    Some(0xFF) => at = i + 1,
                    Some(_) => {
                        at = i;
                        break;
                    }
                }
            }
        }
    }
}

fn check_dimensions(width: u32, height: u32, limits: &ImageLimits) -> Result<(), MediaError> {
    if width < limits.min_side || height < limits.min_side {
        return Err(rejected(format!(
            "The image is too small: {width} × {height} pixels; each side must be at least {} pixels",
            limits.min_side
        )));
    }
    if width > limits.max_side || height > limits.max_side {
        return Err(rejected(format!(
            "The image is too large: {width} × {height} pixels; no side may be longer than {} pixels",
            limits.max_side
        )));
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(rejected(format!(
            "The image has too many pixels: {width} × {height} is {} megapixels; the limit is {} megapixels",
            megapixels(pixels),
            megapixels(limits.max_pixels)
        )));
    }
    Ok(())
}

fn rejected(message: String) -> MediaError {
    MediaError::Rejected(message)
}

/// `5 MiB`, `1.5 MiB`, `300 KiB`, `12 bytes`.
fn human_bytes(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB {
        trimmed(bytes as f64 / MIB as f64, "MiB")
    } else if bytes >= KIB {
        trimmed(bytes as f64 / KIB as f64, "KiB")
    } else {
        format!("{bytes} bytes")
    }
}

fn megapixels(pixels: u64) -> String {
    let value = trimmed(pixels as f64 / 1_000_000.0, "");
    value.trim_end().to_owned()
}

/// One decimal at most, none when it is zero: `5`, `5.2`.
fn trimmed(value: f64, unit: &str) -> String {
    let text = format!("{value:.1}");
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, RgbImage};

    fn limits() -> ImageLimits {
        ImageLimits::default()
    }

    /// A small picture with some structure, so encoders produce real data.
    fn picture(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x * 7) as u8, (y * 5) as u8, ((x + y) * 3) as u8])
        })
    }

    fn encode(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        picture(width, height).write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn rejection(bytes: &[u8], limits: &ImageLimits) -> String {
        match inspect(bytes, limits) {
            Err(MediaError::Rejected(message)) => message,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    /// CRC-32 as PNG chunks use it (IEEE, reflected).
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                let mask = (crc & 1).wrapping_neg();
                crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
            }
        }
        !crc
    }

    /// A PNG signature and a well-formed IHDR chunk claiming `width × height`,
    /// followed by `rest`.
    fn png_header(width: u32, height: u32, rest: &[u8]) -> Vec<u8> {
        let mut chunk = b"IHDR".to_vec();
        chunk.extend_from_slice(&width.to_be_bytes());
        chunk.extend_from_slice(&height.to_be_bytes());
        chunk.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, no interlace
        let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
        bytes.extend_from_slice(&13u32.to_be_bytes());
        bytes.extend_from_slice(&chunk);
        bytes.extend_from_slice(&crc32(&chunk).to_be_bytes());
        bytes.extend_from_slice(rest);
        bytes
    }

    #[test]
    fn accepts_real_jpeg_png_and_webp() {
        for (format, content_type) in [
            (ImageFormat::Jpeg, "image/jpeg"),
            (ImageFormat::Png, "image/png"),
            (ImageFormat::WebP, "image/webp"),
        ] {
            let bytes = encode(160, 120, format);
            let info = inspect(&bytes, &limits()).unwrap();
            assert_eq!(
                info,
                ImageInfo {
                    content_type,
                    width: 160,
                    height: 120
                },
                "{format:?}"
            );
        }
    }

    #[test]
    fn accepts_an_image_with_transparency() {
        let mut out = Cursor::new(Vec::new());
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(
                &[0x80u8; 100 * 100 * 4],
                100,
                100,
                image::ExtendedColorType::Rgba8,
            )
            .unwrap();
        let info = inspect(out.get_ref(), &limits()).unwrap();
        assert_eq!((info.width, info.height), (100, 100));
    }

    #[test]
    fn the_type_comes_from_the_bytes() {
        // A PNG is a PNG whatever it is called; the caller never says.
        let png = encode(120, 120, ImageFormat::Png);
        assert_eq!(inspect(&png, &limits()).unwrap().content_type, "image/png");
        let jpeg = encode(120, 120, ImageFormat::Jpeg);
        assert_eq!(
            inspect(&jpeg, &limits()).unwrap().content_type,
            "image/jpeg"
        );
    }

    #[test]
    fn rejects_other_types() {
        let gif = b"GIF89a\x64\x00\x64\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x64\x00\x64\x00\x00\x02\x02D\x01\x00;";
        let bmp = encode(120, 120, ImageFormat::Png); // re-labelled below
        let mut not_png = bmp.clone();
        not_png[0] = b'B';
        not_png[1] = b'M';
        for bytes in [
            &gif[..],
            b"hello, this is plain text and not an image at all",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"200\" height=\"200\"/>",
            b"%PDF-1.7\n",
            &not_png,
            b"",
            b"\xFF\xD8", // too short to be a JPEG
            b"RIFF\x00\x00\x00\x00WAVE",
        ] {
            let message = rejection(bytes, &limits());
            assert!(
                message.ends_with("must be a JPEG, PNG or WebP image"),
                "{message}"
            );
        }
    }

    #[test]
    fn rejects_a_valid_magic_number_followed_by_garbage() {
        let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
        bytes.extend((0..2000u32).map(|i| (i * 31 % 251) as u8));
        let message = rejection(&bytes, &limits());
        assert!(
            message.contains("PNG") && message.contains("corrupt"),
            "{message}"
        );

        let mut jpeg = vec![0xFF, 0xD8, 0xFF];
        jpeg.extend((0..2000u32).map(|i| (i * 17 % 253) as u8));
        let message = rejection(&jpeg, &limits());
        assert!(
            message.contains("JPEG") && message.contains("corrupt"),
            "{message}"
        );

        let mut webp = b"RIFF\x00\x10\x00\x00WEBPVP8 ".to_vec();
        webp.extend((0..2000u32).map(|i| (i * 13 % 241) as u8));
        let message = rejection(&webp, &limits());
        assert!(
            message.contains("WebP") && message.contains("corrupt"),
            "{message}"
        );
    }

    #[test]
    fn rejects_a_valid_header_with_garbage_data() {
        // The header passes every limit; the pixel data is noise.
        let garbage: Vec<u8> = (0..4000u32).map(|i| (i * 29 % 255) as u8).collect();
        let bytes = png_header(200, 200, &garbage);
        let message = rejection(&bytes, &limits());
        assert!(message.contains("corrupt"), "{message}");
    }

    #[test]
    fn rejects_truncated_images() {
        for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP] {
            let bytes = encode(300, 300, format);
            let message = rejection(&bytes[..bytes.len() / 2], &limits());
            assert!(
                message.contains("corrupt or truncated"),
                "{format:?}: {message}"
            );
        }
    }

    #[test]
    fn refuses_huge_dimensions_from_the_header_alone() {
        // 60 000 × 60 000 would be 3.6 gigapixels; the file is a few bytes,
        // with no pixel data at all, so only the header can be what refuses it.
        let bytes = png_header(60_000, 60_000, b"");
        let message = rejection(&bytes, &limits());
        assert!(message.contains("60000 × 60000"), "{message}");
        assert!(message.contains("10000 pixels"), "{message}");

        // Within the side limit but over the pixel limit.
        let bytes = png_header(9_000, 9_000, b"");
        let message = rejection(&bytes, &limits());
        assert!(message.contains("too many pixels"), "{message}");
        assert!(message.contains("81 megapixels"), "{message}");
        assert!(message.contains("limit is 40 megapixels"), "{message}");
    }

    #[test]
    fn refuses_huge_webp_canvas_from_the_header() {
        // An extended (VP8X) header claiming 16 384 × 16 384.
        let side = 16_384u32 - 1;
        let mut vp8x = vec![0u8; 10];
        vp8x[4..7].copy_from_slice(&side.to_le_bytes()[..3]);
        vp8x[7..10].copy_from_slice(&side.to_le_bytes()[..3]);
        let mut bytes = b"RIFF".to_vec();
        bytes.extend_from_slice(&(4u32 + 8 + 10).to_le_bytes());
        bytes.extend_from_slice(b"WEBPVP8X");
        bytes.extend_from_slice(&10u32.to_le_bytes());
        bytes.extend_from_slice(&vp8x);
        let message = rejection(&bytes, &limits());
        assert_eq!(
            message,
            "The image is too large: 16384 × 16384 pixels; no side may be longer than 10000 pixels"
        );
    }

    /// SOI and a baseline frame header claiming `width × height`, nothing else.
    fn jpeg_frame_header(width: u16, height: u16) -> Vec<u8> {
        let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08];
        bytes.extend_from_slice(&height.to_be_bytes());
        bytes.extend_from_slice(&width.to_be_bytes());
        bytes.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        bytes
    }

    #[test]
    fn refuses_huge_jpeg_dimensions_from_the_header() {
        let message = rejection(&jpeg_frame_header(9_000, 9_000), &limits());
        assert!(message.contains("too many pixels"), "{message}");
        let message = rejection(&jpeg_frame_header(60_000, 100), &limits());
        assert!(message.contains("no side may be longer"), "{message}");
        // Plausible size, but nothing after the header.
        let message = rejection(&jpeg_frame_header(400, 300), &limits());
        assert!(message.contains("corrupt or truncated"), "{message}");
    }

    #[test]
    fn headers_match_the_encoders() {
        for (format, kind) in [
            (ImageFormat::Jpeg, Kind::Jpeg),
            (ImageFormat::Png, Kind::Png),
            (ImageFormat::WebP, Kind::Webp),
        ] {
            let bytes = encode(321, 123, format);
            assert_eq!(Kind::sniff(&bytes), Some(kind));
            assert_eq!(
                read_header(kind, &bytes),
                Some(Header {
                    width: 321,
                    height: 123,
                    complete: true
                }),
                "{format:?}"
            );
        }
    }

    #[test]
    fn jpeg_garbage_between_a_valid_header_and_its_end_marker() {
        let bytes = encode(200, 200, ImageFormat::Jpeg);
        // Everything up to the end of the SOS segment is kept, the
        // entropy-coded data is replaced by noise without 0xFF (so without
        // markers), and the end marker follows.
        let sos = bytes.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        let length = usize::from(u16::from_be_bytes([bytes[sos + 2], bytes[sos + 3]]));
        let header = &bytes[..sos + 2 + length];
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut refused = 0;
        for _ in 0..20 {
            let mut forged = header.to_vec();
            for _ in 0..bytes.len() {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                forged.push(((seed >> 33) as u8).min(0xFE));
            }
            forged.extend_from_slice(&[0xFF, 0xD9]);
            // Entropy-coded data has no checksum, so some noise decodes as
            // a (meaningless) picture of the header's size; noise that
            // breaks the Huffman coding is refused, which the lenient
            // decoder would not do.
            match inspect(&forged, &limits()) {
                Ok(info) => assert_eq!((info.width, info.height), (200, 200)),
                Err(MediaError::Rejected(message)) => {
                    assert!(message.contains("corrupt or truncated"), "{message}");
                    refused += 1;
                }
                Err(other) => panic!("{other:?}"),
            }
            assert!(decode(Kind::Jpeg, &forged, 200, 200).is_some());
            // Cut before the end marker it is refused for sure.
            let message = rejection(&forged[..forged.len() - 2], &limits());
            assert!(message.contains("corrupt or truncated"), "{message}");
        }
        assert!(refused > 0, "the strict decoder refused none of the noise");
    }

    #[test]
    fn jpeg_with_data_after_its_end_marker_is_accepted() {
        // Some cameras append data (a motion photo's video) after EOI.
        let mut bytes = encode(200, 150, ImageFormat::Jpeg);
        bytes.extend_from_slice(b"....ftypmp42 trailing data");
        let info = inspect(&bytes, &limits()).unwrap();
        assert_eq!((info.width, info.height), (200, 150));
    }

    #[test]
    fn refuses_too_small_images() {
        let bytes = encode(99, 400, ImageFormat::Png);
        let message = rejection(&bytes, &limits());
        assert_eq!(
            message,
            "The image is too small: 99 × 400 pixels; each side must be at least 100 pixels"
        );
        let bytes = encode(400, 20, ImageFormat::Jpeg);
        assert!(rejection(&bytes, &limits()).contains("too small"));
    }

    #[test]
    fn refuses_too_many_bytes_before_looking_inside() {
        let bytes = encode(200, 200, ImageFormat::Png);
        let tight = ImageLimits {
            max_bytes: bytes.len() - 1,
            ..limits()
        };
        let message = rejection(&bytes, &tight);
        assert!(message.starts_with("The image is too large:"), "{message}");

        let huge = vec![0u8; 5 * 1024 * 1024 + 1];
        let message = rejection(&huge, &limits());
        assert_eq!(
            message,
            "The image is too large: 5242881 bytes; the limit is 5 MiB (5242880 bytes)"
        );
    }

    #[test]
    fn limits_are_configurable() {
        let bytes = encode(300, 200, ImageFormat::Png);
        let strict = ImageLimits {
            max_side: 250,
            ..limits()
        };
        assert!(rejection(&bytes, &strict).contains("no side may be longer than 250 pixels"));
        let strict = ImageLimits {
            max_pixels: 50_000,
            ..limits()
        };
        assert!(rejection(&bytes, &strict).contains("the limit is 0.1 megapixels"));
        let lenient = ImageLimits {
            min_side: 1,
            ..limits()
        };
        assert!(inspect(&encode(3, 2, ImageFormat::Png), &lenient).is_ok());
    }

    #[test]
    fn default_limits() {
        assert_eq!(
            ImageLimits::default(),
            ImageLimits {
                max_bytes: 5 * 1024 * 1024,
                max_pixels: 40_000_000,
                max_side: 10_000,
                min_side: 100
            }
        );
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(12), "12 bytes");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5 MiB");
        assert_eq!(megapixels(40_000_000), "40");
        assert_eq!(megapixels(12_345_678), "12.3");
    }
}
