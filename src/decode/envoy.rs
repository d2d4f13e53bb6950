//! Envoy-family decoders: Envoy Gateway JSON (typed >= v1.4, all-strings <= v1.3),
//! Istio JSON, Contour JSON (all through the flat JSON decoder), and the text
//! formats: Envoy's built-in default (also Contour's default) and Istio's
//! `EnvoyTextLogFormat`.
//!
//! Envoy default text (access-log-formats.md §1.1):
//! ```text
//! [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"
//! ```
//! Istio text (§3.1) inserts `%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS%
//! "%UPSTREAM_TRANSPORT_FAILURE_REASON%"` after the flags and appends
//! `%UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS%
//! %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%`.
//!
//! Envoy does not escape `"` inside header values, so the fixed fields are
//! taken from both ends of the line and the User-Agent is whatever lies between.

use std::borrow::Cow;

use super::detect::Format;
use super::error::DecodeError;
use super::json_log::decode_flat_json;
use super::record::{split_target, AccessRecord, UpstreamAddrs};
use super::scan::{
    non_dash, parse_count, parse_status, port_of_address, split_request_line, FieldCursor,
};
use super::timestamp::parse_rfc3339;

/// Decodes an Envoy Gateway / Istio / Contour JSON line. See
/// [`super::json_log`] for the key vocabulary.
pub(crate) fn decode_envoy_json<'a>(
    line: &'a str,
    forced: Format,
    keep_headers: &[String],
) -> Result<AccessRecord<'a>, DecodeError> {
    decode_flat_json(line, forced, keep_headers)
}

fn missing(field: &'static str, format: Format) -> DecodeError {
    DecodeError::MissingField {
        field,
        format: format.as_str(),
    }
}

/// Counts the bare tokens between the request line and the next quoted field:
/// 6 for Envoy's default (status … upstream service time), 4 for Istio.
fn bare_tokens_before_quote(cursor: &FieldCursor<'_>) -> usize {
    let mut probe = cursor.clone();
    let mut count = 0;
    while let Some(byte) = probe.peek() {
        if byte == b'"' {
            break;
        }
        if probe.bare().is_none() {
            break;
        }
        count += 1;
    }
    count
}

/// Fills method, path, query and protocol from a logged request line.
pub(crate) fn apply_request_line<'a>(record: &mut AccessRecord<'a>, request: &'a str) {
    if let Some((method, target, version)) = split_request_line(request) {
        record.method = non_dash(method).map(Cow::Borrowed);
        if let Some(target) = non_dash(target) {
            let (path, query) = split_target(Cow::Borrowed(target));
            record.path = Some(path);
            record.query = query;
        }
        record.protocol_raw = non_dash(version).map(Cow::Borrowed);
    }
}

/// Decodes Envoy's default text format or Istio's text format (detected by
/// layout). `forced` restricts the accepted layout: `envoy-text` and `contour`
/// accept only the 15-field default, `istio-text` only Istio's layout.
pub(crate) fn decode_envoy_text(
    line: &str,
    forced: Format,
) -> Result<AccessRecord<'_>, DecodeError> {
    let mut cursor = FieldCursor::new(line);
    let stamp = cursor
        .delimited(b'[', b']')
        .ok_or(missing("start_time", Format::EnvoyText))?;
    let request = cursor
        .quoted()
        .ok_or(missing("request", Format::EnvoyText))?;
    let format = match bare_tokens_before_quote(&cursor) {
        6 => match forced {
            Format::Auto | Format::EnvoyText => Format::EnvoyText,
            Format::Contour => Format::Contour,
            _ => {
                return Err(DecodeError::UnknownFormat {
                    hint: "Envoy default text layout, but istio-text was configured",
                })
            }
        },
        4 => match forced {
            Format::Auto | Format::IstioText => Format::IstioText,
            _ => {
                return Err(DecodeError::UnknownFormat {
                    hint: "Istio text layout, but envoy-text or contour was configured",
                })
            }
        },
        _ => return Err(DecodeError::UnknownFormat {
            hint:
                "bracketed time and quoted request, but neither the Envoy nor the Istio text layout",
        }),
    };
    let mut record = AccessRecord {
        format,
        ..AccessRecord::default()
    };
    record.time_us = Some(parse_rfc3339("start_time", stamp)?);
    apply_request_line(&mut record, request);
    record.status = parse_status(
        "response_code",
        cursor.bare().ok_or(missing("response_code", format))?,
    )?;
    record.response_flags = cursor.bare().and_then(non_dash).map(Cow::Borrowed);
    if format == Format::IstioText {
        record.response_code_details = cursor.bare().and_then(non_dash).map(Cow::Borrowed);
        let _connection_termination_details = cursor.bare();
        let _upstream_transport_failure_reason = cursor
            .quoted()
            .ok_or(missing("upstream_transport_failure_reason", format))?;
    }
    record.bytes_received = parse_count(
        "bytes_received",
        cursor.bare().ok_or(missing("bytes_received", format))?,
    )?;
    record.bytes_sent = parse_count(
        "bytes_sent",
        cursor.bare().ok_or(missing("bytes_sent", format))?,
    )?;
    record.duration_ms = parse_count(
        "duration",
        cursor.bare().ok_or(missing("duration", format))?,
    )?;
    record.upstream_service_time_ms = parse_count(
        "x-envoy-upstream-service-time",
        cursor
            .bare()
            .ok_or(missing("x-envoy-upstream-service-time", format))?,
    )?;
    record.x_forwarded_for =
        non_dash(cursor.quoted().ok_or(missing("x-forwarded-for", format))?).map(Cow::Borrowed);
    if format == Format::IstioText {
        record.route_name =
            non_dash(cursor.bare_back().ok_or(missing("route_name", format))?).map(Cow::Borrowed);
        record.requested_server_name = non_dash(
            cursor
                .bare_back()
                .ok_or(missing("requested_server_name", format))?,
        )
        .map(Cow::Borrowed);
        record.client_address = non_dash(
            cursor
                .bare_back()
                .ok_or(missing("downstream_remote_address", format))?,
        )
        .map(Cow::Borrowed);
        let local = cursor
            .bare_back()
            .ok_or(missing("downstream_local_address", format))?;
        record.listener_port = port_of_address("downstream_local_address", local)?;
        let _upstream_local_address = cursor
            .bare_back()
            .ok_or(missing("upstream_local_address", format))?;
        record.upstream_cluster = non_dash(
            cursor
                .bare_back()
                .ok_or(missing("upstream_cluster", format))?,
        )
        .map(|cluster| Cow::Borrowed(cluster.strip_suffix(';').unwrap_or(cluster)));
    }
    let upstream = cursor
        .quoted_back()
        .ok_or(missing("upstream_host", format))?;
    record.upstream_addrs = UpstreamAddrs::new(Cow::Borrowed(upstream));
    record.authority =
        non_dash(cursor.quoted_back().ok_or(missing("authority", format))?).map(Cow::Borrowed);
    record.request_id = non_dash(
        cursor
            .quoted_back()
            .ok_or(missing("x-request-id", format))?,
    )
    .map(Cow::Borrowed);
    let user_agent = cursor.rest().trim();
    let user_agent = user_agent
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .ok_or(missing("user-agent", format))?;
    record.user_agent = non_dash(user_agent).map(Cow::Borrowed);
    record.finish_protocol(false);
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::record::Protocol;

    const T0: i64 = 1_787_220_930_000_000;

    const ENVOY_TEXT_200: &str = r#"[2026-08-20T10:15:30.123Z] "GET /products?id=42 HTTP/1.1" 200 - 0 5123 12 11 "203.0.113.7" "curl/8.5.0" "9b2f6c1e-4d8a-4b51-9a0e-0c1b2f3e4d5a" "shop.example.com" "10.244.1.17:8080""#;
    const ENVOY_TEXT_UH: &str = r#"[2026-08-20T10:15:31.004Z] "GET /api/orders HTTP/1.1" 503 UH 0 19 0 - "203.0.113.7" "curl/8.5.0" "0f3a7c55-1b2e-4c3d-8e9f-a0b1c2d3e4f5" "shop.example.com" "-""#;
    const ISTIO_TEXT_200: &str = r#"[2026-08-20T10:15:30.123Z] "GET /api/orders?page=2 HTTP/1.1" 200 - via_upstream - "-" 0 5123 12 11 "203.0.113.7" "curl/8.5.0" "9b2f6c1e-4d8a-4b51-9a0e-0c1b2f3e4d5a" "shop.example.com" "10.244.3.44:9000" outbound|80||api-v2.shop.svc.cluster.local 10.244.0.12:41236 10.244.0.12:80 203.0.113.7:53422 - shop.storefront.1"#;
    const ISTIO_TEXT_NR: &str = r#"[2026-08-20T10:15:32.950Z] "GET /nope HTTP/1.1" 404 NR route_not_found - "-" 0 0 0 - "203.0.113.7" "curl/8.5.0" "5d6e7f80-9a1b-4c2d-8e3f-4a5b6c7d8e9f" "unknown.example.com" "-" - - 10.244.0.12:80 203.0.113.7:53426 - -"#;

    #[test]
    fn envoy_default_text_200() {
        let record = decode_envoy_text(ENVOY_TEXT_200, Format::Auto).unwrap();
        assert_eq!(record.format, Format::EnvoyText);
        assert_eq!(record.time_us, Some(T0 + 123_000));
        assert_eq!(record.method.as_deref(), Some("GET"));
        assert_eq!(record.path.as_deref(), Some("/products"));
        assert_eq!(record.query.as_deref(), Some("id=42"));
        assert_eq!(record.protocol, Some(Protocol::Http11));
        assert_eq!(record.status, Some(200));
        assert_eq!(record.response_flags, None);
        assert_eq!(record.bytes_received, Some(0));
        assert_eq!(record.bytes_sent, Some(5123));
        assert_eq!(record.duration_ms, Some(12));
        assert_eq!(record.upstream_service_time_ms, Some(11));
        assert_eq!(record.x_forwarded_for.as_deref(), Some("203.0.113.7"));
        assert_eq!(record.user_agent.as_deref(), Some("curl/8.5.0"));
        assert_eq!(
            record.request_id.as_deref(),
            Some("9b2f6c1e-4d8a-4b51-9a0e-0c1b2f3e4d5a")
        );
        assert_eq!(record.authority.as_deref(), Some("shop.example.com"));
        assert_eq!(record.upstream_addrs.last(), Some("10.244.1.17:8080"));
        assert!(matches!(record.path, Some(Cow::Borrowed(_))));
    }

    #[test]
    fn envoy_default_text_no_healthy_upstream() {
        let record = decode_envoy_text(ENVOY_TEXT_UH, Format::Auto).unwrap();
        assert_eq!(record.status, Some(503));
        assert_eq!(record.response_flags.as_deref(), Some("UH"));
        assert_eq!(record.upstream_service_time_ms, None);
        assert!(record.upstream_addrs.is_empty());
        assert_eq!(record.query, None);
    }

    #[test]
    fn envoy_text_user_agent_with_quotes() {
        let line = r#"[2026-08-20T10:15:30.123Z] "GET / HTTP/2" 200 - 0 1 2 - "-" "evil "quoted" agent" "id-1" "shop.example.com" "10.244.1.17:8080""#;
        let record = decode_envoy_text(line, Format::Auto).unwrap();
        assert_eq!(record.user_agent.as_deref(), Some(r#"evil "quoted" agent"#));
        assert_eq!(record.request_id.as_deref(), Some("id-1"));
        assert_eq!(record.x_forwarded_for, None);
        assert_eq!(record.protocol, Some(Protocol::Http2));
    }

    #[test]
    fn contour_forced_labels_envoy_text() {
        let record = decode_envoy_text(ENVOY_TEXT_200, Format::Contour).unwrap();
        assert_eq!(record.format, Format::Contour);
        let err = decode_envoy_text(ENVOY_TEXT_200, Format::IstioText).unwrap_err();
        assert_eq!(err.reason(), "unknown_format");
    }

    #[test]
    fn istio_text_200() {
        let record = decode_envoy_text(ISTIO_TEXT_200, Format::Auto).unwrap();
        assert_eq!(record.format, Format::IstioText);
        assert_eq!(
            record.response_code_details.as_deref(),
            Some("via_upstream")
        );
        assert_eq!(record.path.as_deref(), Some("/api/orders"));
        assert_eq!(record.query.as_deref(), Some("page=2"));
        assert_eq!(record.upstream_addrs.last(), Some("10.244.3.44:9000"));
        assert_eq!(
            record.upstream_cluster.as_deref(),
            Some("outbound|80||api-v2.shop.svc.cluster.local")
        );
        assert_eq!(record.listener_port, Some(80));
        assert_eq!(record.client_address.as_deref(), Some("203.0.113.7:53422"));
        assert_eq!(record.route_name.as_deref(), Some("shop.storefront.1"));
        assert_eq!(record.requested_server_name, None);
        assert_eq!(record.user_agent.as_deref(), Some("curl/8.5.0"));
        assert_eq!(record.bytes_sent, Some(5123));
    }

    #[test]
    fn istio_text_no_route() {
        let record = decode_envoy_text(ISTIO_TEXT_NR, Format::IstioText).unwrap();
        assert_eq!(record.status, Some(404));
        assert_eq!(record.response_flags.as_deref(), Some("NR"));
        assert_eq!(
            record.response_code_details.as_deref(),
            Some("route_not_found")
        );
        assert_eq!(record.route_name, None);
        assert_eq!(record.upstream_cluster, None);
        assert!(record.upstream_addrs.is_empty());
        let err = decode_envoy_text(ISTIO_TEXT_NR, Format::EnvoyText).unwrap_err();
        assert_eq!(err.reason(), "unknown_format");
    }

    #[test]
    fn envoy_text_errors_name_the_field() {
        let truncated = r#"[2026-08-20T10:15:30.123Z] "GET / HTTP/1.1" 200 - 0 1 2 3 "-" "ua""#;
        let err = decode_envoy_text(truncated, Format::Auto).unwrap_err();
        assert_eq!(err.reason(), "missing_field");
        assert!(err.to_string().contains("authority"), "{err}");
        let bad_status = ENVOY_TEXT_200.replace(" 200 ", " 999 ");
        let err = decode_envoy_text(&bad_status, Format::Auto).unwrap_err();
        assert_eq!(err.reason(), "absurd_value");
        assert!(err.to_string().contains("response_code"));
        let negative = ENVOY_TEXT_200.replace(" 12 11 ", " -12 11 ");
        assert_eq!(
            decode_envoy_text(&negative, Format::Auto)
                .unwrap_err()
                .reason(),
            "absurd_value"
        );
        let old = ENVOY_TEXT_200.replace("2026-08-20", "1960-08-20");
        assert_eq!(
            decode_envoy_text(&old, Format::Auto).unwrap_err().reason(),
            "absurd_value"
        );
    }
}
