//! The decode error type and its stable machine reason codes.

use thiserror::Error;

/// Why a payload (or one record inside it) could not be decoded.
///
/// Every variant maps to a stable, machine-readable reason code
/// ([`DecodeError::reason`]) used for dead-letter routing and metrics, and has a
/// human message that names the offending field where there is one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The payload (or a text field in it) is not valid UTF-8.
    #[error("invalid UTF-8 in {field} at byte {valid_up_to}")]
    InvalidUtf8 {
        /// Which part of the input was being read.
        field: &'static str,
        /// Offset of the first invalid byte within that part.
        valid_up_to: usize,
    },
    /// A JSON document ended before it was complete.
    #[error("truncated JSON in {context}: {message}")]
    TruncatedJson {
        /// Which document was being read (`envelope`, `access log`, ...).
        context: &'static str,
        /// The JSON parser's message (with line and column).
        message: String,
    },
    /// A JSON document is syntactically or structurally invalid.
    #[error("invalid JSON in {context}: {message}")]
    InvalidJson {
        /// Which document was being read (`envelope`, `access log`, ...).
        context: &'static str,
        /// The JSON parser's message (with line and column).
        message: String,
    },
    /// No supported access-log format matches the payload.
    #[error("unknown access-log format: {hint}")]
    UnknownFormat {
        /// What the line looked like (a short, fixed description).
        hint: &'static str,
    },
    /// A field the format requires is absent.
    #[error("missing field `{field}` in {format} record")]
    MissingField {
        /// The missing field.
        field: &'static str,
        /// The format (or envelope) name that requires it.
        format: &'static str,
    },
    /// A field is present but cannot be parsed as the expected type.
    #[error("invalid value for field `{field}`: {value:?}")]
    InvalidValue {
        /// The offending field.
        field: &'static str,
        /// The value as found (truncated to 64 bytes).
        value: String,
    },
    /// A field parsed but its value is impossible (status outside 100..=599,
    /// negative duration or byte count, port 0, timestamp before 1970 or after 2200).
    #[error("absurd value for field `{field}`: {value}")]
    AbsurdValue {
        /// The offending field.
        field: &'static str,
        /// The value as found (truncated to 64 bytes).
        value: String,
    },
    /// The payload is empty or only whitespace.
    #[error("empty line")]
    EmptyLine,
    /// The payload is longer than the configured maximum.
    #[error("line too long: {len} bytes, maximum {max}")]
    TooLong {
        /// The payload length in bytes.
        len: usize,
        /// The configured maximum ([`super::DecodeOptions::max_line_len`]).
        max: usize,
    },
}

impl DecodeError {
    /// The stable machine reason code of this error (snake_case, never changes
    /// between releases): `invalid_utf8`, `truncated_json`, `invalid_json`,
    /// `unknown_format`, `missing_field`, `invalid_value`, `absurd_value`,
    /// `empty_line`, `too_long`.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::InvalidUtf8 { .. } => "invalid_utf8",
            DecodeError::TruncatedJson { .. } => "truncated_json",
            DecodeError::InvalidJson { .. } => "invalid_json",
            DecodeError::UnknownFormat { .. } => "unknown_format",
            DecodeError::MissingField { .. } => "missing_field",
            DecodeError::InvalidValue { .. } => "invalid_value",
            DecodeError::AbsurdValue { .. } => "absurd_value",
            DecodeError::EmptyLine => "empty_line",
            DecodeError::TooLong { .. } => "too_long",
        }
    }

    /// Every reason code [`DecodeError::reason`] can return.
    pub const REASONS: [&'static str; 9] = [
        "invalid_utf8",
        "truncated_json",
        "invalid_json",
        "unknown_format",
        "missing_field",
        "invalid_value",
        "absurd_value",
        "empty_line",
        "too_long",
    ];

    /// Builds an [`DecodeError::InvalidValue`] from a field and a raw value.
    pub(crate) fn invalid(field: &'static str, value: &str) -> Self {
        DecodeError::InvalidValue {
            field,
            value: clip(value),
        }
    }

    /// Builds an [`DecodeError::AbsurdValue`] from a field and a displayable value.
    pub(crate) fn absurd(field: &'static str, value: impl std::fmt::Display) -> Self {
        DecodeError::AbsurdValue {
            field,
            value: clip(&value.to_string()),
        }
    }

    /// Maps a serde_json error to `truncated_json` or `invalid_json`.
    pub(crate) fn from_json(context: &'static str, err: &serde_json::Error) -> Self {
        let message = err.to_string();
        if err.is_eof() {
            DecodeError::TruncatedJson { context, message }
        } else {
            DecodeError::InvalidJson { context, message }
        }
    }
}

/// Cuts a value to at most 64 bytes (on a char boundary) for error messages.
fn clip(value: &str) -> String {
    let mut end = value.len().min(64);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].to_owned()
}
