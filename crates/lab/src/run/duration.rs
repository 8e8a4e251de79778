//! Human durations in scenario files: `"250ms"`, `"5s"`, `"1.5s"`, `"2m"`, `"800us"`.
//!
//! Strings only (never bare numbers) so a reader never has to guess the unit.
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A duration in nanoseconds, parsed from a string with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(pub u64);

impl Dur {
    /// No time at all.
    pub const ZERO: Dur = Dur(0);

    /// `ms` milliseconds.
    pub fn from_millis(ms: u64) -> Dur {
        Dur(ms * 1_000_000)
    }

    /// `s` seconds.
    pub fn from_secs(s: u64) -> Dur {
        Dur(s * 1_000_000_000)
    }

    /// The length in nanoseconds.
    pub fn as_nanos(self) -> u64 {
        self.0
    }

    /// The length in (fractional) milliseconds, for netem and reports.
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// The length in (fractional) seconds, for reports.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// The same length as a `std::time::Duration`, for sleeps and timeouts.
    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0)
    }

    /// Parses `<number><unit>` with unit one of `ns`, `us`, `ms`, `s`, `m`.
    pub fn parse(text: &str) -> Result<Dur, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("duration {text:?} has no unit (use ns, us, ms, s or m)"))?;
        let (number, unit) = text.split_at(split);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("duration {text:?}: {number:?} is not a number"))?;
        let scale = match unit {
            "ns" => 1.0,
            "us" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            other => {
                return Err(format!(
                    "duration {text:?}: unknown unit {other:?} (use ns, us, ms, s or m)"
                ));
            }
        };
        let nanos = value * scale;
        if !nanos.is_finite() || !(0.0..=1e18).contains(&nanos) {
            return Err(format!("duration {text:?} is out of range"));
        }
        Ok(Dur(nanos.round() as u64))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0;
        if ns == 0 {
            write!(f, "0s")
        } else if ns.is_multiple_of(1_000_000_000) {
            write!(f, "{}s", ns / 1_000_000_000)
        } else if ns.is_multiple_of(1_000_000) {
            write!(f, "{}ms", ns / 1_000_000)
        } else if ns.is_multiple_of(1_000) {
            write!(f, "{}us", ns / 1_000)
        } else {
            write!(f, "{ns}ns")
        }
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Dur, D::Error> {
        struct DurVisitor;
        impl Visitor<'_> for DurVisitor {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a duration string such as \"250ms\" or \"5s\"")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Dur, E> {
                Dur::parse(value).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(DurVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        let cases = [
            ("250ms", 250_000_000),
            ("5s", 5_000_000_000),
            ("1.5s", 1_500_000_000),
            ("2m", 120_000_000_000),
            ("800us", 800_000),
            ("17ns", 17),
        ];
        for (text, nanos) in cases {
            assert_eq!(Dur::parse(text), Ok(Dur(nanos)), "{text}");
        }
    }

    #[test]
    fn rejects_missing_or_unknown_units() {
        assert!(Dur::parse("5").unwrap_err().contains("no unit"));
        assert!(Dur::parse("5h").unwrap_err().contains("unknown unit"));
        assert!(Dur::parse("x5s").is_err());
    }

    #[test]
    fn display_round_trips() {
        for text in ["250ms", "5s", "800us", "17ns", "1500ms"] {
            assert_eq!(Dur::parse(text).unwrap().to_string(), text);
        }
    }
}
