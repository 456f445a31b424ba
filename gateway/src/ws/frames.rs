//! Wire frames of the live protocol: parsing what clients send, writing
//! replies and events.

use domain::error::ErrorCode;
use domain::live::Delivery;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ApiError, ErrorBody};
use crate::routes::conversations::event_data;

/// Longest request id accepted.
const MAX_ID_CHARS: usize = 64;

/// A client request, read but not yet carried out.
#[derive(Debug)]
pub struct Request {
    pub id: Value,
    pub kind: String,
    pub data: Value,
}

/// Why a frame is not a request: the error to answer, with the request id
/// when one could be read.
#[derive(Debug)]
pub struct BadFrame {
    pub id: Value,
    pub error: ApiError,
}

#[derive(Deserialize)]
struct RawRequest {
    #[serde(default)]
    id: Value,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    data: Value,
}

fn valid_id(id: &Value) -> bool {
    match id {
        Value::String(s) => !s.is_empty() && s.chars().count() <= MAX_ID_CHARS,
        Value::Number(n) => n.is_i64() || n.is_u64(),
        _ => false,
    }
}

/// Reads one text frame as a request.
pub fn parse(text: &str) -> Result<Request, BadFrame> {
    let raw: RawRequest = serde_json::from_str(text).map_err(|_| BadFrame {
        id: Value::Null,
        error: ApiError::new(ErrorCode::BadRequest, "a frame must be one JSON object"),
    })?;
    if !valid_id(&raw.id) {
        return Err(BadFrame {
            id: Value::Null,
            error: ApiError::new(
                ErrorCode::BadRequest,
                "a request needs an id: a string of 1 to 64 characters or an integer",
            ),
        });
    }
    let Some(kind) = raw.kind.filter(|k| !k.is_empty()) else {
        return Err(BadFrame {
            id: raw.id,
            error: ApiError::new(ErrorCode::BadRequest, "a request needs a type"),
        });
    };
    let data = match raw.data {
        Value::Null => Value::Object(Default::default()),
        data @ Value::Object(_) => data,
        _ => {
            return Err(BadFrame {
                id: raw.id,
                error: ApiError::new(ErrorCode::BadRequest, "data must be an object"),
            })
        }
    };
    Ok(Request {
        id: raw.id,
        kind,
        data,
    })
}

#[derive(Serialize)]
struct ReplyFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a Value,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody>,
}

/// The reply to request `id`.
pub fn reply(id: &Value, result: Result<Value, ApiError>) -> String {
    let frame = match result {
        Ok(data) => ReplyFrame {
            kind: "reply",
            id,
            ok: true,
            data: Some(data),
            error: None,
        },
        Err(error) => ReplyFrame {
            kind: "reply",
            id,
            ok: false,
            data: None,
            error: Some(error.into_body()),
        },
    };
    to_text(&frame)
}

#[derive(Serialize)]
struct EventFrame {
    #[serde(rename = "type")]
    kind: &'static str,
    event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<i64>,
    data: Value,
}

/// An event frame.
pub fn event(delivery: &Delivery) -> String {
    to_text(&EventFrame {
        kind: "event",
        event: delivery.event.kind(),
        cursor: delivery.cursor,
        data: event_data(&delivery.event),
    })
}

fn to_text(frame: &impl Serialize) -> String {
    // Frames are built from plain data: serialising cannot fail.
    serde_json::to_string(frame).unwrap_or_else(|_| String::from("{}"))
}

/// Reads a request's data as `T`, with a validation error naming the
/// request type when it does not fit.
pub fn data<T: serde::de::DeserializeOwned>(kind: &str, data: Value) -> Result<T, ApiError> {
    serde_json::from_value(data).map_err(|e| {
        ApiError::new(
            ErrorCode::ValidationFailed,
            format!("the data of {kind} does not match: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_or_refused_with_a_reason() {
        let ok = parse(r#"{"id":"1","type":"ping"}"#).unwrap();
        assert_eq!(ok.kind, "ping");
        assert!(ok.data.is_object());
        let ok = parse(r#"{"id":7,"type":"chat.send","data":{"a":1}}"#).unwrap();
        assert_eq!(ok.id, Value::from(7));

        let bad = parse("not json").unwrap_err();
        assert_eq!(bad.id, Value::Null);
        assert_eq!(bad.error.code(), ErrorCode::BadRequest);
        assert_eq!(parse(r#"{"type":"ping"}"#).unwrap_err().id, Value::Null);
        assert_eq!(
            parse(r#"{"id":{},"type":"ping"}"#).unwrap_err().id,
            Value::Null
        );
        assert_eq!(parse(r#"{"id":"x"}"#).unwrap_err().id, Value::from("x"));
        assert_eq!(
            parse(r#"{"id":"x","type":"ping","data":[1]}"#)
                .unwrap_err()
                .id,
            Value::from("x")
        );
        let long = format!(r#"{{"id":"{}","type":"ping"}}"#, "x".repeat(65));
        assert!(parse(&long).is_err());
    }

    #[test]
    fn replies_carry_the_request_id() {
        let text = reply(&Value::from("9"), Ok(serde_json::json!({"a": 1})));
        let frame: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(frame["type"], "reply");
        assert_eq!(frame["id"], "9");
        assert_eq!(frame["ok"], true);
        assert_eq!(frame["data"]["a"], 1);
        let text = reply(&Value::Null, Err(ApiError::not_found("no")));
        let frame: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(frame["ok"], false);
        assert_eq!(frame["error"]["code"], "not_found");
        assert!(frame["id"].is_null());
    }
}
