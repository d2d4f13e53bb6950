//! A memo of parsed upstream cluster names, kept by a record processor.
//!
//! A log holds a few hundred distinct cluster names (one per route rule), and
//! every record's name was parsed again: for an Envoy Gateway
//! `httproute/<ns>/<name>/rule/<i>` about 700 instructions of segment
//! splitting and DNS-name checks. Parsing is a pure function of the
//! implementation and the text, so [`NameMemo`] remembers, per distinct text,
//! whether it parsed, and for a route-rule name where its namespace and name
//! sit in the text; a hit rebuilds the same [`UpstreamName`] from the current
//! text with one hash lookup. Other name shapes are not memoised (they are
//! parsed as before). The memo holds at most [`MEMO_CAPACITY`] names, so
//! input with ever-new names costs bounded memory (names past it are simply
//! parsed).
//!
//! A route-rule entry also remembers where the resolver found its rule in
//! one compiled route index ([`RuleAt`], set by
//! [`NameMemo::remember_rule_at`]): finding a rule is a pure function of the
//! name and the index, and looking it up by name reads the route's
//! namespace and name strings, cold cache lines, on every record.

use std::ops::Range;

use crate::gateway::compile::FastMap;
use crate::gateway::RouteKind;

use super::naming::{self, Implementation, RouteRef, RuleRef, UpstreamName};

/// Most distinct names remembered.
pub const MEMO_CAPACITY: usize = 16_384;

/// What a name parsed to, in positions of the name itself.
#[derive(Debug, Clone)]
enum Memoised {
    /// No scheme parsed it.
    Unparsed,
    /// A route rule with an exact namespace and name.
    Rule {
        scheme: Implementation,
        kind: RouteKind,
        namespace: Range<usize>,
        name: Range<usize>,
        rule_index: usize,
        backend_index: Option<usize>,
        /// Where the rule was found in one route index, if remembered.
        found: Option<RuleAt>,
    },
    /// Any other shape: parsed every time.
    Other,
}

/// Where a named rule sits in one compiled route index: the route's position
/// in [`RouteIndex::routes`](crate::gateway::RouteIndex) and the rule's in
/// the route's `rules`, valid for the index whose
/// [`instance`](crate::gateway::RouteIndex::instance) is `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleAt {
    /// [`RouteIndex::instance`](crate::gateway::RouteIndex::instance) of the index.
    pub index: u64,
    /// Position of the route.
    pub route: u32,
    /// Position of the rule in the route.
    pub rule: u32,
}

/// Parsed cluster names by their text (see the module docs).
#[derive(Debug, Default)]
pub struct NameMemo {
    /// The implementation hint the entries were parsed with.
    implementation: Implementation,
    entries: FastMap<Box<str>, Memoised>,
}

impl NameMemo {
    /// An empty memo.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of names remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no name is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `parse_upstream_name_scheme(implementation, raw)`, from the memo when
    /// `raw` was seen before. The memo serves the first implementation hint
    /// it is used with; names under other hints are parsed every time.
    #[cfg(test)]
    pub(crate) fn parse_upstream_name_scheme<'a>(
        &mut self,
        implementation: Implementation,
        raw: &'a str,
    ) -> Option<(Implementation, UpstreamName<'a>)> {
        self.parse_upstream_name_scheme_at(implementation, raw).0
    }

    /// [`parse_upstream_name_scheme`](Self::parse_upstream_name_scheme), with
    /// where the named rule was found, when remembered
    /// ([`remember_rule_at`](Self::remember_rule_at)).
    pub(crate) fn parse_upstream_name_scheme_at<'a>(
        &mut self,
        implementation: Implementation,
        raw: &'a str,
    ) -> (Option<(Implementation, UpstreamName<'a>)>, Option<RuleAt>) {
        if implementation != self.implementation {
            if !self.entries.is_empty() {
                // Another hint than the memo's (a stream mixing
                // implementations): parse without the memo rather than
                // clearing it, which would cost an allocation per record when
                // hints alternate.
                return (
                    naming::parse_upstream_name_scheme(implementation, raw),
                    None,
                );
            }
            self.implementation = implementation;
        }
        if let Some(memoised) = self.entries.get(raw) {
            let found = match memoised {
                Memoised::Rule { found, .. } => *found,
                _ => None,
            };
            match rebuild(memoised, raw) {
                Rebuilt::Known(parsed) => return (parsed, found),
                Rebuilt::Parse => {
                    return (
                        naming::parse_upstream_name_scheme(implementation, raw),
                        None,
                    )
                }
            }
        }
        let parsed = naming::parse_upstream_name_scheme(implementation, raw);
        if self.entries.len() < MEMO_CAPACITY {
            self.entries.insert(raw.into(), memoise(parsed, raw));
        }
        (parsed, None)
    }

    /// Remembers that the rule the cluster name `raw` names was found at
    /// `at` (replacing what was remembered for another index). The caller
    /// must have found it with the resolver's rule lookup for the name as
    /// parsed under `implementation`; names the memo does not hold as a
    /// route rule (or holds for another hint) are left alone.
    pub(crate) fn remember_rule_at(
        &mut self,
        implementation: Implementation,
        raw: &str,
        at: RuleAt,
    ) {
        if implementation != self.implementation {
            return;
        }
        if let Some(Memoised::Rule { found, .. }) = self.entries.get_mut(raw) {
            *found = Some(at);
        }
    }
}

/// A memo entry applied to the text it was made from.
enum Rebuilt<'a> {
    Known(Option<(Implementation, UpstreamName<'a>)>),
    Parse,
}

fn rebuild<'a>(memoised: &Memoised, raw: &'a str) -> Rebuilt<'a> {
    match memoised {
        Memoised::Unparsed => Rebuilt::Known(None),
        Memoised::Other => Rebuilt::Parse,
        Memoised::Rule {
            scheme,
            kind,
            namespace,
            name,
            rule_index,
            backend_index,
            found: _,
        } => match (raw.get(namespace.clone()), raw.get(name.clone())) {
            (Some(namespace), Some(name)) => Rebuilt::Known(Some((
                *scheme,
                UpstreamName::Rule(RuleRef {
                    kind: *kind,
                    route: RouteRef::Exact { namespace, name },
                    rule_index: *rule_index,
                    backend_index: *backend_index,
                }),
            ))),
            // Cannot happen for the text the entry was made from; parse.
            _ => Rebuilt::Parse,
        },
    }
}

/// The memo entry of `parsed`, the result of parsing `raw`.
fn memoise(parsed: Option<(Implementation, UpstreamName<'_>)>, raw: &str) -> Memoised {
    match parsed {
        None => Memoised::Unparsed,
        Some((
            scheme,
            UpstreamName::Rule(RuleRef {
                kind,
                route: RouteRef::Exact { namespace, name },
                rule_index,
                backend_index,
            }),
        )) => match (range_in(raw, namespace), range_in(raw, name)) {
            (Some(namespace), Some(name)) => Memoised::Rule {
                scheme,
                kind,
                namespace,
                name,
                rule_index,
                backend_index,
                found: None,
            },
            _ => Memoised::Other,
        },
        Some(_) => Memoised::Other,
    }
}

/// Where `part`, a sub-slice of `whole`, sits in it (checked: `None` when it
/// is not a sub-slice).
fn range_in(whole: &str, part: &str) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let range = start..start + part.len();
    (whole.get(range.clone()) == Some(part)).then_some(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 12] = [
        "httproute/shop/storefront/rule/1",
        " httproute/shop/storefront/rule/1/backend/0 ",
        "grpcroute/ns/svc/rule/0",
        "httproute/shop/storefront/rule/x",
        "service/shop/web/8080",
        "outbound|80||web.shop.svc.cluster.local",
        "shop_web_80",
        "-",
        "",
        "null",
        "invalid-backend-cluster",
        "httproute/shop/storefront/rule/1/match/0/shop_example_com",
    ];

    #[test]
    fn memo_answers_as_the_parser_does() {
        for implementation in [
            Implementation::Auto,
            Implementation::EnvoyGateway,
            Implementation::Istio,
            Implementation::NginxGatewayFabric,
        ] {
            let mut memo = NameMemo::new();
            // Twice: the first fills the memo, the second answers from it.
            for _ in 0..2 {
                for name in NAMES {
                    // A fresh copy, so a hit rebuilds from other memory.
                    let copy = name.to_owned();
                    assert_eq!(
                        memo.parse_upstream_name_scheme(implementation, &copy),
                        naming::parse_upstream_name_scheme(implementation, &copy),
                        "{implementation:?} {name}"
                    );
                }
            }
            assert_eq!(memo.len(), NAMES.len());
        }
    }

    #[test]
    fn another_implementation_is_parsed_without_the_memo() {
        let mut memo = NameMemo::new();
        let name = "shop_web_80";
        for _ in 0..3 {
            // Alternating hints: each answer is the parser's, and the memo
            // keeps serving the first hint instead of being cleared each time.
            let ngf = memo.parse_upstream_name_scheme(Implementation::NginxGatewayFabric, name);
            let eg = memo.parse_upstream_name_scheme(Implementation::EnvoyGateway, name);
            assert_eq!(
                ngf,
                naming::parse_upstream_name_scheme(Implementation::NginxGatewayFabric, name)
            );
            assert_eq!(
                eg,
                naming::parse_upstream_name_scheme(Implementation::EnvoyGateway, name)
            );
            assert_eq!(memo.len(), 1);
            assert_eq!(memo.implementation, Implementation::NginxGatewayFabric);
        }
    }

    #[test]
    fn capacity_bounds_the_memo() {
        let mut memo = NameMemo::new();
        for i in 0..MEMO_CAPACITY + 10 {
            let name = format!("httproute/ns/r{i}/rule/0");
            let parsed = memo.parse_upstream_name_scheme(Implementation::EnvoyGateway, &name);
            assert!(matches!(parsed, Some((_, UpstreamName::Rule(_)))));
        }
        assert_eq!(memo.len(), MEMO_CAPACITY);
    }
}
