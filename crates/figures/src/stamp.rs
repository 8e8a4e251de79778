//! Wall-clock stamps for run directories and reports, in UTC, formatted by
//! `jiff` (no calendar arithmetic of our own).

use std::time::SystemTime;

use jiff::Timestamp;

fn timestamp(time: SystemTime) -> Timestamp {
    // Times before 1970 or past 9999 never name a run; clamp rather than fail.
    Timestamp::try_from(time).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// `YYYYmmdd-HHMMSS` in UTC: sorts by time and is safe in file names.
pub fn utc_stamp(time: SystemTime) -> String {
    timestamp(time).strftime("%Y%m%d-%H%M%S").to_string()
}

/// RFC 3339 in UTC with whole seconds, e.g. `2000-02-29T01:01:01Z`.
pub fn utc_rfc3339(time: SystemTime) -> String {
    timestamp(time).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn stamps_are_utc_civil_time() {
        let at = |secs| UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(utc_stamp(at(0)), "19700101-000000");
        assert_eq!(utc_stamp(at(951_782_400 + 3_661)), "20000229-010101");
        assert_eq!(utc_rfc3339(at(951_782_400 + 3_661)), "2000-02-29T01:01:01Z");
        assert_eq!(
            utc_stamp(at(951_782_400 + 3_661) + Duration::from_millis(999)),
            "20000229-010101"
        );
    }
}
