//! Durations written as Argo CD and Kubernetes write them: `500ms`, `5s`, `3m`, `1h30m`.

use std::fmt;
use std::time::Duration;

/// A duration that reads and writes the `1h2m3s` notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GoDuration(pub Duration);

/// Why a duration text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {text:?}: expected a number with a unit (ms, s, m, h), e.g. 5s or 1m30s")]
pub struct DurationError {
    pub text: String,
}

impl GoDuration {
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        let err = || DurationError {
            text: text.to_owned(),
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(err());
        }
        if trimmed == "0" {
            return Ok(Self(Duration::ZERO));
        }
        let mut total = Duration::ZERO;
        let mut rest = trimmed;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(err)?;
            if digits == 0 {
                return Err(err());
            }
            let value: f64 = rest[..digits].parse().map_err(|_| err())?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let seconds_per_unit = match &rest[..unit_len] {
                "ms" => 0.001,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => return Err(err()),
            };
            rest = &rest[unit_len..];
            let part = Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|_| err())?;
            total = total.checked_add(part).ok_or_else(err)?;
        }
        Ok(Self(total))
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.is_zero() {
            return f.write_str("0s");
        }
        if d.subsec_millis() != 0 && d.as_secs() == 0 {
            return write!(f, "{}ms", d.as_millis());
        }
        let secs = d.as_secs();
        let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 || (h == 0 && m == 0) {
            write!(f, "{s}s")?;
        }
        Ok(())
    }
}

impl serde::Serialize for GoDuration {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for GoDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let cases = [
            ("5s", 5_000),
            ("3m", 180_000),
            ("1h30m", 5_400_000),
            ("500ms", 500),
            ("1.5s", 1_500),
            ("0", 0),
        ];
        for (text, ms) in cases {
            assert_eq!(
                GoDuration::parse(text).unwrap().0,
                Duration::from_millis(ms),
                "{text}"
            );
        }
        assert_eq!(GoDuration(Duration::from_secs(5400)).to_string(), "1h30m");
        assert_eq!(GoDuration(Duration::from_millis(500)).to_string(), "500ms");
        for bad in ["", "5", "s", "5x", "-1s", "1e400h"] {
            assert!(GoDuration::parse(bad).is_err(), "{bad}");
        }
    }
}
