//! HAProxy decoders: the `option httplog` default format and the HAProxy
//! Kubernetes Ingress / HAProxy Unified Gateway layout.
//!
//! httplog (haproxy `src/log.c` `default_http_log_format`):
//! ```text
//! %ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r
//! ```
//! Kubernetes Ingress replaces the request line with `"%HM %[var(txn.base)] %HV"`
//! (`txn.base` = Host + path, **no query**); HAProxy Unified Gateway also adds
//! `{BLR:%[var(txn.base_listener_route)]}` before it (access-log-formats.md §7).
//!
//! `%tr` is local time without a zone; it is taken as UTC (gateways run in UTC
//! containers). `%hr`/`%hs` captures are skipped: their header names are in the
//! HAProxy config, not in the line.

use std::borrow::Cow;

use super::detect::Format;
use super::error::DecodeError;
use super::record::{split_target, AccessRecord};
use super::scan::{
    non_dash, parse_count, parse_status, parse_timer, split_request_line, FieldCursor,
};
use super::timestamp::parse_clf;

fn missing(field: &'static str, format: Format) -> DecodeError {
    DecodeError::MissingField {
        field,
        format: format.as_str(),
    }
}

/// Decodes an HAProxy httplog or ingress-layout line. With [`Format::Auto`]
/// the layout is chosen from the request target (`/path` → httplog,
/// `host/path` or a `{BLR:` capture → ingress); a forced format labels the
/// record and chooses how the target is read.
pub(crate) fn decode_haproxy(line: &str, forced: Format) -> Result<AccessRecord<'_>, DecodeError> {
    let family = if forced == Format::Auto {
        Format::HaproxyHttplog
    } else {
        forced
    };
    let mut cursor = FieldCursor::new(line);
    let client = cursor.bare().ok_or(missing("client", family))?;
    let mut record = AccessRecord {
        client_address: non_dash(client).map(Cow::Borrowed),
        ..AccessRecord::default()
    };
    let stamp = cursor
        .delimited(b'[', b']')
        .ok_or(missing("accept_date", family))?;
    record.time_us = Some(parse_clf("accept_date", stamp)?);
    record.frontend = Some(Cow::Borrowed(
        cursor.bare().ok_or(missing("frontend", family))?,
    ));
    let backend_server = cursor.bare().ok_or(missing("backend/server", family))?;
    let (backend, server) = backend_server
        .split_once('/')
        .ok_or_else(|| DecodeError::invalid("backend/server", backend_server))?;
    record.upstream_cluster = non_dash(backend).map(Cow::Borrowed);
    record.upstream_server = match server {
        "<NOSRV>" | "-" | "" => None,
        name => Some(Cow::Borrowed(name)),
    };
    let timers = cursor.bare().ok_or(missing("timers", family))?;
    let mut parts = timers.split('/');
    let (Some(_request), Some(_queue), Some(_connect), Some(response), Some(active), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(DecodeError::invalid("timers", timers));
    };
    record.upstream_service_time_ms = parse_timer("Tr", response)?;
    record.duration_ms = parse_timer("Ta", active)?;
    record.status = parse_status("status", cursor.bare().ok_or(missing("status", family))?)?;
    record.bytes_sent = parse_count(
        "bytes_read",
        cursor.bare().ok_or(missing("bytes_read", family))?,
    )?;
    let _captured_request_cookie = cursor
        .bare()
        .ok_or(missing("captured_request_cookie", family))?;
    let _captured_response_cookie = cursor
        .bare()
        .ok_or(missing("captured_response_cookie", family))?;
    let termination = cursor.bare().ok_or(missing("termination_state", family))?;
    record.response_flags = non_dash(termination).map(Cow::Borrowed);
    let _connections = cursor.bare().ok_or(missing("connections", family))?;
    let _queues = cursor.bare().ok_or(missing("queues", family))?;
    let request = cursor.quoted_back().ok_or(missing("request", family))?;
    // What is left: `{captured request headers}` `{captured response headers}`
    // and HUG's `{BLR:...}`, each optional.
    let mut saw_blr = false;
    while cursor.peek() == Some(b'{') {
        let capture = cursor
            .delimited(b'{', b'}')
            .ok_or(missing("captures", family))?;
        if let Some(route) = capture.strip_prefix("BLR:") {
            saw_blr = true;
            record.route_name = non_dash(route).map(Cow::Borrowed);
        }
    }
    let (method, target, version) = split_request_line(request).unwrap_or(("", "", ""));
    let ingress_target =
        !target.is_empty() && !target.starts_with('/') && target != "*" && !target.contains("://");
    record.format = match forced {
        Format::Auto if saw_blr || ingress_target => Format::HaproxyIngress,
        Format::Auto => Format::HaproxyHttplog,
        other => other,
    };
    record.method = non_dash(method).map(Cow::Borrowed);
    record.protocol_raw = non_dash(version).map(Cow::Borrowed);
    if let Some(target) = non_dash(target) {
        if record.format == Format::HaproxyIngress && !target.starts_with('/') {
            // `txn.base`: Host header followed by the path, no query string.
            let (host, path) = target
                .find('/')
                .map_or((target, ""), |slash| target.split_at(slash));
            record.authority = non_dash(host).map(Cow::Borrowed);
            record.path = (!path.is_empty()).then_some(Cow::Borrowed(path));
        } else if let Some(rest) = target
            .strip_prefix("http://")
            .or_else(|| target.strip_prefix("https://"))
        {
            // Absolute-form request target.
            let (host, path) = rest
                .find('/')
                .map_or((rest, "/"), |slash| rest.split_at(slash));
            record.authority = Some(Cow::Borrowed(host));
            let (path, query) = split_target(Cow::Borrowed(path));
            record.path = Some(path);
            record.query = query;
        } else {
            let (path, query) = split_target(Cow::Borrowed(target));
            record.path = Some(path);
            record.query = query;
        }
    }
    record.finish_protocol(false);
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_787_220_930_000_000;

    #[test]
    fn httplog_served() {
        let line = r#"203.0.113.7:53422 [20/Aug/2026:10:15:30.123] fe_http be_web/web2 0/0/1/10/11 200 5123 - - ---- 1/1/0/0/0 0/0 "GET /products?id=42 HTTP/1.1""#;
        let record = decode_haproxy(line, Format::Auto).unwrap();
        assert_eq!(record.format, Format::HaproxyHttplog);
        assert_eq!(record.time_us, Some(T0 + 123_000));
        assert_eq!(record.client_address.as_deref(), Some("203.0.113.7:53422"));
        assert_eq!(record.frontend.as_deref(), Some("fe_http"));
        assert_eq!(record.upstream_cluster.as_deref(), Some("be_web"));
        assert_eq!(record.upstream_server.as_deref(), Some("web2"));
        assert_eq!(record.upstream_service_time_ms, Some(10));
        assert_eq!(record.duration_ms, Some(11));
        assert_eq!(record.status, Some(200));
        assert_eq!(record.bytes_sent, Some(5123));
        assert_eq!(record.response_flags.as_deref(), Some("----"));
        assert_eq!(record.method.as_deref(), Some("GET"));
        assert_eq!(record.path.as_deref(), Some("/products"));
        assert_eq!(record.query.as_deref(), Some("id=42"));
        assert_eq!(record.authority, None);
    }

    #[test]
    fn httplog_no_server_and_captures() {
        let line = r#"203.0.113.7:53424 [20/Aug/2026:10:15:31.004] fe_http be_api/<NOSRV> 0/-1/-1/-1/0 503 217 - - SC-- 1/1/0/0/0 0/0 {shop.example.com|curl} {} "GET /api/orders HTTP/1.1""#;
        let record = decode_haproxy(line, Format::HaproxyHttplog).unwrap();
        assert_eq!(record.upstream_server, None);
        assert_eq!(record.upstream_service_time_ms, None);
        assert_eq!(record.duration_ms, Some(0));
        assert_eq!(record.response_flags.as_deref(), Some("SC--"));
        assert_eq!(record.path.as_deref(), Some("/api/orders"));
    }

    #[test]
    fn ingress_layout() {
        let line = r#"203.0.113.7:53422 [20/Aug/2026:10:15:30.123] http shop_svc_web_http/SRV_1 0/0/1/10/11 200 5123 - - ---- 1/1/0/0/0 0/0 "GET shop.example.com/products HTTP/1.1""#;
        let record = decode_haproxy(line, Format::Auto).unwrap();
        assert_eq!(record.format, Format::HaproxyIngress);
        assert_eq!(record.authority.as_deref(), Some("shop.example.com"));
        assert_eq!(record.path.as_deref(), Some("/products"));
        assert_eq!(record.query, None);
        assert_eq!(
            record.upstream_cluster.as_deref(),
            Some("shop_svc_web_http")
        );
        assert_eq!(record.upstream_server.as_deref(), Some("SRV_1"));
    }

    #[test]
    fn unified_gateway_layout() {
        let line = r#"203.0.113.7:53426 [20/Aug/2026:10:15:32.950] hug_infra_public-gw_http backend_not_found/<NOSRV> 0/-1/-1/-1/0 404 135 - - LR-- 1/1/0/0/0 0/0 {BLR:-} "GET unknown.example.com/nope HTTP/1.1""#;
        let record = decode_haproxy(line, Format::Auto).unwrap();
        assert_eq!(record.format, Format::HaproxyIngress);
        assert_eq!(record.route_name, None);
        assert_eq!(
            record.upstream_cluster.as_deref(),
            Some("backend_not_found")
        );
        assert_eq!(record.status, Some(404));
        assert_eq!(record.response_flags.as_deref(), Some("LR--"));
        let served = r#"203.0.113.7:53422 [20/Aug/2026:10:15:30.123] hug_infra_public-gw_http hug_shop_web_80__/SRV_8f3e9904fc22b571a9e21e8b158c09f79153cb9b 0/0/1/10/11 200 5123 - - ---- 1/1/0/0/0 0/0 {BLR:<listener-route-key>/products} "GET shop.example.com/products HTTP/1.1""#;
        let record = decode_haproxy(served, Format::Auto).unwrap();
        assert_eq!(
            record.route_name.as_deref(),
            Some("<listener-route-key>/products")
        );
        assert_eq!(
            record.upstream_cluster.as_deref(),
            Some("hug_shop_web_80__")
        );
        assert_eq!(record.authority.as_deref(), Some("shop.example.com"));
    }

    #[test]
    fn haproxy_errors() {
        let bad_timers = r#"203.0.113.7:1 [20/Aug/2026:10:15:30.123] fe be/s 0/0/1 200 5 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1""#;
        let err = decode_haproxy(bad_timers, Format::Auto).unwrap_err();
        assert_eq!(err.reason(), "invalid_value");
        assert!(err.to_string().contains("timers"));
        let no_request = r#"203.0.113.7:1 [20/Aug/2026:10:15:30.123] fe be/s 0/0/1/1/1 200 5 - - ---- 1/1/0/0/0 0/0"#;
        let err = decode_haproxy(no_request, Format::Auto).unwrap_err();
        assert_eq!(err.reason(), "missing_field");
        assert!(err.to_string().contains("request"));
    }
}
