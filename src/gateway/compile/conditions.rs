//! Compact copies of the method, header and query conditions of HTTP matches,
//! so that `decide` judges a conditional candidate from one short record
//! instead of the [`MatchEntry`] and the heap strings its conditions point to
//! (a chain of dependent cache misses: the entry, its header vector, each
//! name and value).
//!
//! Every record lives in one byte arena, at the offset its candidate carries
//! ([`super::Candidate`]):
//!
//! ```text
//! [method code] [header count] [query count]
//! per header:   [name length] name (lower case) [value length] value
//! per query:    [name length] name              [value length] value
//! ```
//!
//! Only matches whose conditions are all exact values (no regex), whose method
//! (if any) is a standard one ([`super::method_code`]) and whose names and
//! values are shorter than 256 bytes get a record; the others are judged from
//! their match object as before. A record evaluates exactly as
//! [`crate::gateway::matcher::HttpMatchCondition::eval_given_path`] does
//! (three-valued, Kleene AND) and reports the unknown attributes as
//! `note_unknowns` in `decide` does.

use super::path_index::{method_code, same_bytes};
use super::{MatchCondition, MatchEntry};
use crate::gateway::matcher::{HttpMatchCondition, Truth, ValueCondition};
use crate::gateway::prefetch::prefetch;
use crate::gateway::request::Request;

/// Offset of "no record": the candidate is judged from its match object.
pub(crate) const NO_RECORD: u32 = u32::MAX;

/// The arena of compact condition records (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct CompactConditions {
    bytes: Box<[u8]>,
}

/// What evaluating a record found: the match's truth and, when it is
/// `Unknown`, which attributes made it so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordTruth {
    pub(crate) truth: Truth,
    /// The match has a method condition and the request method is unknown.
    pub(crate) method_unknown: bool,
    /// A header condition's lookup was unknown.
    pub(crate) headers_unknown: bool,
    /// The match has query conditions and the query string is unknown.
    pub(crate) query_unknown: bool,
}

impl CompactConditions {
    /// The records of every match that can have one, and per match id its
    /// record's offset ([`NO_RECORD`] for the others, and for matches without
    /// method, header or query conditions: they need none).
    pub(super) fn build(matches: &[MatchEntry]) -> (CompactConditions, Vec<u32>) {
        let mut bytes = Vec::new();
        let offsets = matches
            .iter()
            .map(|entry| match &entry.condition {
                MatchCondition::Http(m) => encode(m, &mut bytes),
                MatchCondition::Grpc(_) => NO_RECORD,
            })
            .collect();
        (
            CompactConditions {
                bytes: bytes.into_boxed_slice(),
            },
            offsets,
        )
    }

    /// Evaluates the record at `at` for `req`, whose path is known to satisfy
    /// the match's path condition. `method` is the request method's
    /// [`method_code`]: `None` when the method is unknown, `Some(None)` for a
    /// method without a code (which equals no recorded method).
    ///
    /// A damaged offset (never produced by `build`) evaluates as `No`.
    #[inline]
    pub(crate) fn eval(
        &self,
        at: u32,
        req: &Request<'_>,
        method: Option<Option<u8>>,
    ) -> RecordTruth {
        let mut out = RecordTruth {
            truth: Truth::No,
            method_unknown: false,
            headers_unknown: false,
            query_unknown: false,
        };
        let Some(record) = self.bytes.get(at as usize..) else {
            return out;
        };
        let Some(&[code, headers, queries]) = record.get(..3) else {
            return out;
        };
        let mut truth = Truth::Yes;
        if code != 0 {
            match method {
                None => {
                    truth = Truth::Unknown;
                    out.method_unknown = true;
                }
                Some(req_code) if req_code != Some(code) => return out,
                Some(_) => {}
            }
        }
        let mut rest = &record[3..];
        for _ in 0..headers {
            let Some((name, value, tail)) = entry_at(rest) else {
                return out;
            };
            rest = tail;
            let found = req
                .headers
                .known
                .iter()
                .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name));
            match found {
                Some((_, v)) if same_bytes(v.as_bytes(), value) => {}
                Some(_) => return out,
                None if req.headers.others_unknown => {
                    truth = Truth::Unknown;
                    out.headers_unknown = true;
                }
                None => return out,
            }
        }
        if queries != 0 {
            if req.query.is_none() {
                out.query_unknown = true;
                out.truth = Truth::Unknown;
                // Every query condition is unknown; a later `No` is impossible
                // (headers came first), so the match is unknown.
                return out;
            }
            for _ in 0..queries {
                let Some((name, value, tail)) = entry_at(rest) else {
                    return out;
                };
                rest = tail;
                match req.query_param_bytes(name) {
                    crate::gateway::request::Lookup::Present(v)
                        if same_bytes(v.as_bytes(), value) => {}
                    _ => return out,
                }
            }
        }
        out.truth = truth;
        out
    }

    /// Prefetch hint: starts loading the record at `at`.
    #[inline]
    pub(crate) fn prefetch(&self, at: u32) {
        if let Some(b) = self.bytes.get(at as usize) {
            prefetch(b);
        }
    }
}

/// One `[len] name [len] value` entry at the start of `bytes`, and what
/// follows it.
#[inline]
fn entry_at(bytes: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let (&name_len, rest) = bytes.split_first()?;
    let (name, rest) = rest.split_at_checked(usize::from(name_len))?;
    let (&value_len, rest) = rest.split_first()?;
    let (value, rest) = rest.split_at_checked(usize::from(value_len))?;
    Some((name, value, rest))
}

/// Appends the record of `m` to `bytes` and returns its offset, or
/// [`NO_RECORD`] when `m` has no condition besides its path or cannot be
/// recorded (a regex value, a non-standard method, a string of 256 bytes or
/// more, more than 255 conditions of a kind, or an arena past `u32`).
fn encode(m: &HttpMatchCondition, bytes: &mut Vec<u8>) -> u32 {
    if m.method.is_none() && m.headers.is_empty() && m.query.is_empty() {
        return NO_RECORD;
    }
    let code = match m.method.as_deref().map(method_code) {
        None => 0,
        Some(Some(code)) => code,
        Some(None) => return NO_RECORD,
    };
    let (Ok(headers), Ok(queries)) = (u8::try_from(m.headers.len()), u8::try_from(m.query.len()))
    else {
        return NO_RECORD;
    };
    let mut record = vec![code, headers, queries];
    let header_names = m.headers.len();
    for (i, (name, cond)) in m.headers.iter().chain(&m.query).enumerate() {
        let ValueCondition::Exact(value) = cond else {
            return NO_RECORD;
        };
        // Header names are stored lower case (compile already lowercases
        // them; a condition built otherwise is normalised here). Query
        // parameter names are case-sensitive and stored as given.
        let name = if i < header_names {
            name.to_ascii_lowercase()
        } else {
            name.clone()
        };
        for s in [name.as_str(), value.as_str()] {
            let Ok(len) = u8::try_from(s.len()) else {
                return NO_RECORD;
            };
            record.push(len);
            record.extend_from_slice(s.as_bytes());
        }
    }
    let Ok(at) = u32::try_from(bytes.len()) else {
        return NO_RECORD;
    };
    if at == NO_RECORD {
        return NO_RECORD;
    }
    bytes.extend_from_slice(&record);
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::matcher::PathCondition;
    use crate::gateway::request::Headers;

    fn exact(name: &str, value: &str) -> (String, ValueCondition) {
        (name.to_string(), ValueCondition::Exact(value.to_string()))
    }

    /// Records evaluate as `eval_given_path` and report the unknowns
    /// `note_unknowns` reports, over known / unknown / absent methods,
    /// headers and query strings.
    #[test]
    fn records_evaluate_as_the_match_conditions() {
        let conditions = [
            HttpMatchCondition {
                path: PathCondition::prefix("/"),
                method: Some("GET".into()),
                headers: vec![],
                query: vec![],
            },
            HttpMatchCondition {
                path: PathCondition::prefix("/"),
                method: None,
                headers: vec![exact("x-version", "2"), exact("x-canary", "true")],
                query: vec![],
            },
            HttpMatchCondition {
                path: PathCondition::prefix("/"),
                method: Some("POST".into()),
                headers: vec![exact("x-version", "2")],
                query: vec![exact("debug", "1"), exact("lang", "")],
            },
            HttpMatchCondition {
                path: PathCondition::prefix("/"),
                method: None,
                headers: vec![],
                query: vec![exact("a", "b")],
            },
        ];
        let mut bytes = Vec::new();
        let offsets: Vec<u32> = conditions.iter().map(|m| encode(m, &mut bytes)).collect();
        assert!(offsets.iter().all(|&o| o != NO_RECORD));
        let table = CompactConditions {
            bytes: bytes.into_boxed_slice(),
        };
        let header_sets: [&[(&str, &str)]; 4] = [
            &[],
            &[("X-Version", "2")],
            &[("x-version", "2"), ("X-CANARY", "true")],
            &[("x-version", "3"), ("x-version", "2"), ("x-canary", "true")],
        ];
        let mut seen = std::collections::HashSet::new();
        for m_at in conditions.iter().zip(&offsets) {
            let (m, &at) = m_at;
            for method in [None, Some("GET"), Some("POST"), Some("get"), Some("PURGE")] {
                for query in [
                    None,
                    Some(""),
                    Some("debug=1&lang="),
                    Some("a=b"),
                    Some("a=c&a=b"),
                ] {
                    for known in header_sets {
                        for others_unknown in [false, true] {
                            let req = Request {
                                method,
                                path: "/x",
                                query,
                                headers: Headers {
                                    known,
                                    others_unknown,
                                },
                                ..Request::default()
                            };
                            let got = table.eval(at, &req, method.map(method_code));
                            let want = m.eval_given_path(&req);
                            assert_eq!(got.truth, want, "{m:?} {req:?}");
                            seen.insert(format!("{want:?}"));
                            if want == Truth::Unknown {
                                let header_unknown = m.headers.iter().any(|(n, _)| {
                                    req.headers.get(n) == crate::gateway::request::Lookup::Unknown
                                });
                                assert_eq!(
                                    (got.method_unknown, got.headers_unknown, got.query_unknown),
                                    (
                                        m.method.is_some() && req.method.is_none(),
                                        header_unknown,
                                        !m.query.is_empty() && req.query.is_none()
                                    ),
                                    "{m:?} {req:?}"
                                );
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(seen.len(), 3, "every truth value was produced");
    }

    #[test]
    fn regexes_and_other_methods_get_no_record() {
        let mut bytes = Vec::new();
        let regex = HttpMatchCondition {
            path: PathCondition::prefix("/"),
            method: None,
            headers: vec![(
                "x".into(),
                ValueCondition::Regex(regex::Regex::new("^a$").expect("regex")),
            )],
            query: vec![],
        };
        let purge = HttpMatchCondition {
            path: PathCondition::prefix("/"),
            method: Some("PURGE".into()),
            headers: vec![],
            query: vec![],
        };
        let plain = HttpMatchCondition {
            path: PathCondition::prefix("/a"),
            method: None,
            headers: vec![],
            query: vec![],
        };
        let long = HttpMatchCondition {
            path: PathCondition::prefix("/"),
            method: None,
            headers: vec![exact("x", &"v".repeat(256))],
            query: vec![],
        };
        for m in [regex, purge, plain, long] {
            assert_eq!(encode(&m, &mut bytes), NO_RECORD, "{m:?}");
        }
        assert!(bytes.is_empty());
    }

    /// Records hold header names lower case, whatever the condition says,
    /// and query parameter names as given (they are case-sensitive).
    #[test]
    fn header_names_are_stored_lower_case() {
        let mut bytes = Vec::new();
        let m = HttpMatchCondition {
            path: PathCondition::prefix("/"),
            method: None,
            headers: vec![exact("X-Version", "V2")],
            query: vec![exact("Debug", "On")],
        };
        let at = encode(&m, &mut bytes);
        assert_eq!(at, 0);
        assert_eq!(bytes, b"\0\x01\x01\x09x-version\x02V2\x05Debug\x02On");
    }
}
