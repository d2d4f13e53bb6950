//! NGINX decoders: the built-in `combined` format (also the official image's
//! `main`, which appends `"$http_x_forwarded_for"`, and Kong's
//! `kong_log_format`, which appends `kong_request_id: "..."`), NGINX JSON
//! written with `escape=json`, and NGINX Gateway Fabric (default `combined`, or
//! the JSON layout of access-log-formats.md §6.1 with `proxy_host` and
//! `upstream_addr`).
//!
//! `combined` (compiled into `ngx_http_log_module`):
//! ```text
//! $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"
//! ```
//! With the default `escape=default`, `"`, `\` and bytes outside 32..=126 are
//! written as `\xXX`, so quoted fields never contain a raw quote; values with
//! escapes are unescaped (owned), all others borrow.

use std::borrow::Cow;

use super::detect::Format;
use super::error::DecodeError;
use super::json_log::decode_flat_json;
use super::record::{split_target, AccessRecord};
use super::scan::{
    non_dash, parse_count, parse_status, split_request_line, unescape_nginx, FieldCursor,
};
use super::timestamp::parse_clf;

/// Decodes an NGINX JSON line (`escape=json`) or NGINX Gateway Fabric JSON.
pub(crate) fn decode_nginx_json<'a>(
    line: &'a str,
    forced: Format,
    keep_headers: &[String],
) -> Result<AccessRecord<'a>, DecodeError> {
    decode_flat_json(line, forced, keep_headers)
}

fn missing(field: &'static str) -> DecodeError {
    DecodeError::MissingField {
        field,
        format: Format::NginxCombined.as_str(),
    }
}

/// An unescaped, non-dash text value.
fn text(raw: &str) -> Option<Cow<'_, str>> {
    non_dash(raw).map(unescape_nginx)
}

/// Decodes an NGINX `combined` / `main` / Kong line. The result is labelled
/// `label` (`nginx-combined` or `nginx-gateway-fabric`).
pub(crate) fn decode_nginx_combined(
    line: &str,
    label: Format,
) -> Result<AccessRecord<'_>, DecodeError> {
    let mut cursor = FieldCursor::new(line);
    let mut record = AccessRecord {
        format: label,
        ..AccessRecord::default()
    };
    record.client_address = text(cursor.bare().ok_or(missing("remote_addr"))?);
    // `- $remote_user`: the literal dash, then the user (`-` when none).
    let _dash = cursor.bare().ok_or(missing("remote_user"))?;
    let _remote_user = cursor.bare().ok_or(missing("remote_user"))?;
    let stamp = cursor.delimited(b'[', b']').ok_or(missing("time_local"))?;
    record.time_us = Some(parse_clf("time_local", stamp)?);
    let request = cursor.quoted().ok_or(missing("request"))?;
    if let Some((method, target, version)) = split_request_line(request) {
        record.method = text(method);
        if let Some(target) = text(target) {
            let (path, query) = split_target(target);
            record.path = Some(path);
            record.query = query;
        }
        record.protocol_raw = text(version);
    }
    record.status = parse_status("status", cursor.bare().ok_or(missing("status"))?)?;
    record.bytes_sent = parse_count(
        "body_bytes_sent",
        cursor.bare().ok_or(missing("body_bytes_sent"))?,
    )?;
    record.referer = text(cursor.quoted().ok_or(missing("http_referer"))?);
    record.user_agent = text(cursor.quoted().ok_or(missing("http_user_agent"))?);
    // Optional trailers: `main`'s "$http_x_forwarded_for", Kong's
    // `kong_request_id: "$kong_request_id"`.
    while !cursor.is_empty() {
        if cursor.peek() == Some(b'"') {
            let value = cursor.quoted().ok_or(missing("http_x_forwarded_for"))?;
            if record.x_forwarded_for.is_none() {
                record.x_forwarded_for = text(value);
            }
            continue;
        }
        match cursor.bare() {
            Some("kong_request_id:") => {
                record.request_id = text(cursor.quoted().ok_or(missing("kong_request_id"))?);
            }
            // Unknown trailing tokens of an extended custom format are ignored.
            Some(_) => {}
            None => break,
        }
    }
    record.finish_protocol(false);
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::record::Protocol;

    const T0: i64 = 1_787_220_930_000_000;

    #[test]
    fn combined_line() {
        let line = r#"203.0.113.7 - - [20/Aug/2026:10:15:30 +0000] "GET /products?id=42 HTTP/1.1" 200 5123 "-" "curl/8.5.0""#;
        let record = decode_nginx_combined(line, Format::NginxCombined).unwrap();
        assert_eq!(record.format, Format::NginxCombined);
        assert_eq!(record.client_address.as_deref(), Some("203.0.113.7"));
        assert_eq!(record.time_us, Some(T0));
        assert_eq!(record.method.as_deref(), Some("GET"));
        assert_eq!(record.path.as_deref(), Some("/products"));
        assert_eq!(record.query.as_deref(), Some("id=42"));
        assert_eq!(record.protocol, Some(Protocol::Http11));
        assert_eq!(record.status, Some(200));
        assert_eq!(record.bytes_sent, Some(5123));
        assert_eq!(record.referer, None);
        assert_eq!(record.user_agent.as_deref(), Some("curl/8.5.0"));
        assert!(record.upstream_addrs.is_empty());
        assert_eq!(record.authority, None);
    }

    #[test]
    fn main_and_kong_trailers() {
        let main = r#"203.0.113.7 - alice [20/Aug/2026:10:15:30 +0000] "GET / HTTP/1.0" 301 169 "https://ref.example/" "Mozilla/5.0 (X11)" "198.51.100.1, 203.0.113.7""#;
        let record = decode_nginx_combined(main, Format::NginxCombined).unwrap();
        assert_eq!(
            record.x_forwarded_for.as_deref(),
            Some("198.51.100.1, 203.0.113.7")
        );
        assert_eq!(record.referer.as_deref(), Some("https://ref.example/"));
        assert_eq!(record.user_agent.as_deref(), Some("Mozilla/5.0 (X11)"));
        let kong = r#"203.0.113.7 - - [20/Aug/2026:10:15:31 +0000] "GET /api/orders HTTP/1.1" 503 97 "-" "curl/8.5.0" kong_request_id: "6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d""#;
        let record = decode_nginx_combined(kong, Format::NginxCombined).unwrap();
        assert_eq!(
            record.request_id.as_deref(),
            Some("6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d")
        );
        assert_eq!(record.status, Some(503));
    }

    #[test]
    fn escaped_values_are_unescaped() {
        let line = r#"203.0.113.7 - - [20/Aug/2026:10:15:30 +0000] "GET /a%20b HTTP/1.1" 200 1 "-" "say \x22hi\x22""#;
        let record = decode_nginx_combined(line, Format::NginxGatewayFabric).unwrap();
        assert_eq!(record.user_agent.as_deref(), Some("say \"hi\""));
        assert!(matches!(record.user_agent, Some(Cow::Owned(_))));
        assert_eq!(record.format, Format::NginxGatewayFabric);
    }

    #[test]
    fn garbage_request_line_keeps_status() {
        let line = r#"203.0.113.7 - - [20/Aug/2026:10:15:30 +0000] "\x16\x03\x01" 400 157 "-" "-""#;
        let record = decode_nginx_combined(line, Format::NginxCombined).unwrap();
        assert_eq!(record.status, Some(400));
        assert_eq!(record.method, None);
        assert_eq!(record.path, None);
    }

    #[test]
    fn combined_errors() {
        let truncated = r#"203.0.113.7 - - [20/Aug/2026:10:15:30 +0000] "GET / HTTP/1.1" 200"#;
        let err = decode_nginx_combined(truncated, Format::NginxCombined).unwrap_err();
        assert_eq!(err.reason(), "missing_field");
        assert!(err.to_string().contains("body_bytes_sent"));
        let bad_time =
            r#"203.0.113.7 - - [20/Aug/2026:25:15:30 +0000] "GET / HTTP/1.1" 200 1 "-" "-""#;
        let err = decode_nginx_combined(bad_time, Format::NginxCombined).unwrap_err();
        assert_eq!(err.reason(), "invalid_value");
        assert!(err.to_string().contains("time_local"));
    }
}
