//! Opaque pagination cursors.
//!
//! A cursor is the sort position of the last hit of a page: the sort it was
//! made for, the raw sort values (score bits, price, rating bits and review
//! count, creation time) and the gig id that breaks ties, as base64url. Both
//! backends read the same format, so a page served by the local fallback can
//! be continued by Elasticsearch and back.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use uuid::Uuid;

use crate::error::SearchError;
use crate::model::{order_key, Sort};

const VERSION: u8 = 0x40;
const LEN: usize = 1 + 8 + 4 + 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub sort: Sort,
    pub primary: u64,
    pub secondary: u32,
    pub gig_id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(LEN);
        bytes.push(VERSION | self.sort.code());
        bytes.extend_from_slice(&self.primary.to_be_bytes());
        bytes.extend_from_slice(&self.secondary.to_be_bytes());
        bytes.extend_from_slice(self.gig_id.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Decodes a cursor made for `sort`.
    pub fn decode(raw: &str, sort: Sort) -> Result<Cursor, SearchError> {
        let malformed = || SearchError::invalid("malformed cursor");
        if raw.len() > 64 {
            return Err(malformed());
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| malformed())?;
        if bytes.len() != LEN || bytes[0] & 0xf0 != VERSION {
            return Err(malformed());
        }
        let cursor_sort = Sort::from_code(bytes[0] & 0x0f).ok_or_else(malformed)?;
        if cursor_sort != sort {
            return Err(SearchError::invalid(
                "cursor belongs to a different sort order",
            ));
        }
        let primary = u64::from_be_bytes(bytes[1..9].try_into().map_err(|_| malformed())?);
        let secondary = u32::from_be_bytes(bytes[9..13].try_into().map_err(|_| malformed())?);
        let gig_id = Uuid::from_slice(&bytes[13..]).map_err(|_| malformed())?;
        Ok(Cursor {
            sort,
            primary,
            secondary,
            gig_id,
        })
    }

    /// The position in result order; hits strictly after it come next.
    pub fn key(&self) -> (u64, u64, u128) {
        let (a, b) = order_key(self.sort, self.primary, self.secondary);
        (a, b, self.gig_id.as_u128())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let cursor = Cursor {
            sort: Sort::Rating,
            primary: u64::from(4.5f32.to_bits()),
            secondary: 12,
            gig_id: Uuid::from_u128(0x1234),
        };
        let raw = cursor.encode();
        assert!(raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(Cursor::decode(&raw, Sort::Rating).unwrap(), cursor);
        assert!(Cursor::decode(&raw, Sort::Newest)
            .unwrap_err()
            .is_invalid_query());
        for bad in [
            "",
            "abc",
            "!!!!",
            &raw[1..],
            &format!("{raw}AA"),
            &"A".repeat(500),
        ] {
            assert!(
                Cursor::decode(bad, Sort::Rating)
                    .unwrap_err()
                    .is_invalid_query(),
                "{bad}"
            );
        }
    }
}
