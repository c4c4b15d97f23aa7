//! Anthropic-shaped error bodies for every error hoopctl itself produces
//! (SPEC section 3), so the agent shows the message to its user.
//!
//! Owns: the JSON shape, the status-to-type table, and the SSE `error`
//! event. Must not: know about hyper or sockets.

use serde::Serialize;

/// An error hoopctl answers in the agent's place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    /// When false, the response carries `x-should-retry: false` so Claude
    /// Code fails at once instead of retrying for minutes (SPEC section 2).
    pub should_retry: bool,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: Inner<'a>,
    request_id: &'a str,
}

#[derive(Serialize)]
struct Inner<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: &'a str,
}

#[derive(Serialize)]
struct EventBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: Inner<'a>,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            should_retry: true,
        }
    }

    /// An error that retrying cannot fix.
    pub fn final_(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            should_retry: false,
        }
    }

    /// The error `type` Anthropic uses for this status.
    pub fn error_type(&self) -> &'static str {
        match self.status {
            400 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            529 => "overloaded_error",
            408 | 504 => "timeout_error",
            _ => "api_error",
        }
    }

    /// The JSON body of the error response.
    pub fn to_json(&self, request_id: &str) -> Vec<u8> {
        let body = Body {
            kind: "error",
            error: Inner {
                kind: self.error_type(),
                message: &self.message,
            },
            request_id,
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }

    /// The same error as a Server-Sent Event, for a stream that already
    /// answered 200 (`event: error`, SPEC section 3).
    pub fn to_sse_event(&self) -> Vec<u8> {
        let body = EventBody {
            kind: "error",
            error: Inner {
                kind: self.error_type(),
                message: &self.message,
            },
        };
        let json = serde_json::to_string(&body).unwrap_or_default();
        format!("event: error\ndata: {json}\n\n").into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_matches_the_api() {
        let e = ApiError::new(502, "upstream unreachable");
        let v: serde_json::Value = serde_json::from_slice(&e.to_json("req_1")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"error","error":{"type":"api_error","message":"upstream unreachable"},"request_id":"req_1"})
        );
    }

    #[test]
    fn types_follow_status() {
        for (status, kind) in [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (413, "request_too_large"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (529, "overloaded_error"),
        ] {
            assert_eq!(ApiError::new(status, "x").error_type(), kind);
        }
    }

    #[test]
    fn sse_event_is_one_complete_event() {
        let e = ApiError::new(502, "cut");
        let s = String::from_utf8(e.to_sse_event()).unwrap();
        assert!(s.starts_with("event: error\ndata: {"));
        assert!(s.ends_with("}\n\n"));
        let data = s.trim_start_matches("event: error\ndata: ").trim_end();
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["error"]["type"], "api_error");
    }
}
