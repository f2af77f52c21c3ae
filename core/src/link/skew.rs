//! The supported version skew between the hub and its spokes: which product versions may run together, assessed from the versions each side announces.

use std::fmt;

/// How far a spoke's release may be from the hub's, in minor versions of the same major.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkewPolicy {
    /// A spoke may be this many minor versions older than the hub.
    pub older_minors: u64,
    /// A spoke may be this many minor versions newer than the hub.
    pub newer_minors: u64,
}

/// edgecd's policy (docs/protocol.md#version-skew): spokes up to two minor versions older than the hub and
/// one newer, so the hub is upgraded first and a fleet follows one cluster at a time, over releases.
pub const POLICY: SkewPolicy = SkewPolicy {
    older_minors: 2,
    newer_minors: 1,
};

/// Where a spoke's release stands against the hub's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skew {
    /// The same major and minor.
    Same,
    /// Within the policy: `minors` older (negative) or newer (positive).
    Supported { minors: i64 },
    /// Outside the policy; the reason says how and what to do.
    Unsupported { reason: String },
    /// A version that is not `MAJOR.MINOR.PATCH` (a development build, or none reported yet).
    Unknown { reason: String },
}

impl Skew {
    /// Whether this pairing is one the project tests and supports.
    pub fn is_supported(&self) -> bool {
        matches!(self, Self::Same | Self::Supported { .. })
    }
}

impl fmt::Display for Skew {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Same => f.write_str("same release as the hub"),
            Self::Supported { minors } if *minors < 0 => {
                write!(
                    f,
                    "{} minor {} older than the hub (supported)",
                    -minors,
                    plural(*minors)
                )
            }
            Self::Supported { minors } => {
                write!(
                    f,
                    "{minors} minor {} newer than the hub (supported)",
                    plural(*minors)
                )
            }
            Self::Unsupported { reason } | Self::Unknown { reason } => f.write_str(reason),
        }
    }
}

fn plural(minors: i64) -> &'static str {
    if minors.unsigned_abs() == 1 {
        "version"
    } else {
        "versions"
    }
}

impl SkewPolicy {
    /// Assesses a spoke announcing `spoke` against a hub of release `hub` (both `MAJOR.MINOR.PATCH`, a leading
    /// `v` and pre-release or build suffixes allowed).
    pub fn assess(&self, hub: &str, spoke: &str) -> Skew {
        if spoke.trim().is_empty() {
            return Skew::Unknown {
                reason: "the spoke has not reported its version yet".into(),
            };
        }
        let Some(hub_version) = parse(hub) else {
            return Skew::Unknown {
                reason: format!("the hub's version {hub:?} is not MAJOR.MINOR.PATCH"),
            };
        };
        let Some(spoke_version) = parse(spoke) else {
            return Skew::Unknown {
                reason: format!("the spoke's version {spoke:?} is not MAJOR.MINOR.PATCH"),
            };
        };
        if hub_version.major != spoke_version.major {
            return Skew::Unsupported {
                reason: format!(
                    "spoke {spoke_version} and hub {hub_version} are of different major versions: \
                     upgrade the spoke to {}.x",
                    hub_version.major
                ),
            };
        }
        let minors = i128::from(spoke_version.minor) - i128::from(hub_version.minor);
        let minors = i64::try_from(minors).unwrap_or(i64::MAX);
        if minors == 0 {
            Skew::Same
        } else if minors < 0 && minors.unsigned_abs() > self.older_minors {
            Skew::Unsupported {
                reason: format!(
                    "spoke {spoke_version} is {} minor versions older than hub {hub_version}; \
                     at most {} are supported: upgrade the spoke",
                    minors.unsigned_abs(),
                    self.older_minors
                ),
            }
        } else if minors > 0 && minors.unsigned_abs() > self.newer_minors {
            Skew::Unsupported {
                reason: format!(
                    "spoke {spoke_version} is {minors} minor versions newer than hub {hub_version}; \
                     at most {} is supported: upgrade the hub first",
                    self.newer_minors
                ),
            }
        } else {
            Skew::Supported { minors }
        }
    }
}

fn parse(version: &str) -> Option<semver::Version> {
    let version = version.trim();
    semver::Version::parse(version.strip_prefix('v').unwrap_or(version)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_minors_older_and_one_newer_are_supported() {
        assert_eq!(POLICY.assess("1.5.0", "1.5.3"), Skew::Same);
        assert_eq!(
            POLICY.assess("1.5.0", "1.3.9"),
            Skew::Supported { minors: -2 }
        );
        assert_eq!(
            POLICY.assess("1.5.0", "v1.6.0"),
            Skew::Supported { minors: 1 }
        );
        assert_eq!(
            POLICY.assess("1.5.0", "1.4.0-rc.1"),
            Skew::Supported { minors: -1 }
        );
        assert_eq!(
            POLICY.assess("1.5.0", "1.4.0").to_string(),
            "1 minor version older than the hub (supported)"
        );
    }

    #[test]
    fn beyond_the_policy_the_reason_says_which_side_to_upgrade() {
        let old = POLICY.assess("1.5.0", "1.2.0");
        assert!(!old.is_supported());
        assert!(old.to_string().contains("3 minor versions older"), "{old}");
        assert!(old.to_string().contains("upgrade the spoke"), "{old}");
        let new = POLICY.assess("1.5.0", "1.7.0");
        assert!(new.to_string().contains("upgrade the hub first"), "{new}");
        let major = POLICY.assess("1.5.0", "2.0.0");
        assert!(major.to_string().contains("different major"), "{major}");
    }

    #[test]
    fn versions_that_are_not_semver_are_unknown_not_refused() {
        assert!(matches!(POLICY.assess("1.5.0", ""), Skew::Unknown { .. }));
        assert!(matches!(
            POLICY.assess("1.5.0", "dev-build"),
            Skew::Unknown { .. }
        ));
        assert!(matches!(
            POLICY.assess("main", "1.5.0"),
            Skew::Unknown { .. }
        ));
        assert!(matches!(
            POLICY.assess("1.0.0", &format!("1.{}.0", u64::MAX)),
            Skew::Unsupported { .. }
        ));
    }
}
