//! Kubernetes-style label selectors: `matchLabels` plus `matchExpressions` (In, NotIn, Exists, DoesNotExist), and the `k=v,k2!=v2` text form.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// Why a selector text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid label selector {text:?}: {reason}")]
pub struct SelectorError {
    pub text: String,
    pub reason: String,
}

impl LabelSelector {
    /// Whether the selector selects nothing in particular (matches all).
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }

    /// Parses `a=b,c!=d,e in (x,y),f notin (z),g,!h`.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let err = |reason: &str| SelectorError {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        let mut selector = LabelSelector::default();
        for term in split_terms(text) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            let lower = term.to_ascii_lowercase();
            if let Some(idx) = lower.find(" notin ").or_else(|| lower.find(" in ")) {
                let not = lower[idx..].starts_with(" notin ");
                let key = term[..idx].trim();
                let rest = term[idx + if not { 7 } else { 4 }..].trim();
                let inner = rest
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| err("set values must be in parentheses"))?;
                let values = inner
                    .split(',')
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
                    .collect();
                check_key(key).map_err(|r| err(&r))?;
                selector.match_expressions.push(Requirement {
                    key: key.to_owned(),
                    operator: if not { Operator::NotIn } else { Operator::In },
                    values,
                });
            } else if let Some((key, value)) = term.split_once("!=") {
                check_key(key.trim()).map_err(|r| err(&r))?;
                selector.match_expressions.push(Requirement {
                    key: key.trim().to_owned(),
                    operator: Operator::NotIn,
                    values: vec![value.trim().to_owned()],
                });
            } else if let Some((key, value)) =
                term.split_once("==").or_else(|| term.split_once('='))
            {
                check_key(key.trim()).map_err(|r| err(&r))?;
                selector
                    .match_labels
                    .insert(key.trim().to_owned(), value.trim().to_owned());
            } else if let Some(key) = term.strip_prefix('!') {
                check_key(key.trim()).map_err(|r| err(&r))?;
                selector.match_expressions.push(Requirement {
                    key: key.trim().to_owned(),
                    operator: Operator::DoesNotExist,
                    values: vec![],
                });
            } else {
                check_key(term).map_err(|r| err(&r))?;
                selector.match_expressions.push(Requirement {
                    key: term.to_owned(),
                    operator: Operator::Exists,
                    values: vec![],
                });
            }
        }
        Ok(selector)
    }
}

impl Requirement {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

/// Splits on commas outside parentheses.
impl std::fmt::Display for LabelSelector {
    /// The text form [`LabelSelector::parse`] reads back: `a=b,c notin (d),e in (x,y),f,!g`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut terms: Vec<String> = self
            .match_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        for r in &self.match_expressions {
            terms.push(match r.operator {
                Operator::In => format!("{} in ({})", r.key, r.values.join(",")),
                Operator::NotIn => format!("{} notin ({})", r.key, r.values.join(",")),
                Operator::Exists => r.key.clone(),
                Operator::DoesNotExist => format!("!{}", r.key),
            });
        }
        f.write_str(&terms.join(","))
    }
}

fn split_terms(text: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&text[start..]);
    terms
}

fn check_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key.len() <= 317
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid label key {key:?}"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_text_form_reads_back() {
        for text in ["a=b", "a=b,c notin (d),e in (x,y),f,!g"] {
            let selector = super::LabelSelector::parse(text).unwrap();
            assert_eq!(selector.to_string(), text);
            assert_eq!(
                super::LabelSelector::parse(&selector.to_string()).unwrap(),
                selector
            );
        }
    }

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_and_matches_every_form() {
        let s =
            LabelSelector::parse("region=eu, tier in (edge, core),env!=prod,gpu,!legacy").unwrap();
        assert!(s.matches(&labels(&[("region", "eu"), ("tier", "edge"), ("gpu", "1")])));
        assert!(!s.matches(&labels(&[
            ("region", "eu"),
            ("tier", "edge"),
            ("gpu", "1"),
            ("legacy", "y")
        ])));
        assert!(!s.matches(&labels(&[
            ("region", "eu"),
            ("tier", "edge"),
            ("gpu", "1"),
            ("env", "prod")
        ])));
        assert!(!s.matches(&labels(&[("region", "us"), ("tier", "edge"), ("gpu", "1")])));
        let notin = LabelSelector::parse("tier notin (core)").unwrap();
        assert!(notin.matches(&labels(&[])));
        assert!(LabelSelector::parse("").unwrap().is_empty());
        assert!(LabelSelector::parse("a in x").is_err());
        assert!(LabelSelector::parse("bad key=1").is_err());
    }
}
