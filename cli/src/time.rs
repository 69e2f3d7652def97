//! Clock, dates and durations for people.

use crate::error::{CliError, Result};

/// Milliseconds since 1970 now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A UTC timestamp `YYYY-MM-DD HH:MM:SS` for people.
pub fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A time as its writer's clock showed it: local time and offset when the record says which
/// zone (`2026-01-02 09:30:00 +05:30`), else UTC (`2026-01-02 04:00:00 UTC`).
pub fn format_zoned(ms: i64, tz_offset_minutes: Option<i16>) -> String {
    match tz_offset_minutes {
        Some(tz) => format!(
            "{} {}",
            format_time(ms.saturating_add(i64::from(tz) * 60_000)),
            client::display::utc_offset(tz)
        ),
        None => format!("{} UTC   ", format_time(ms)),
    }
}

/// Parses `30d`, `12h`, `90m`, `45s`, `2w`, `1y` into seconds.
pub fn parse_duration(text: &str) -> Result<u64> {
    let bad = || {
        CliError::usage(format!("{text:?} is not a duration"))
            .with_hint("use a number and a unit: 45s, 90m, 12h, 30d, 2w, 1y")
    };
    let (num, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "y" => 365 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).filter(|s| *s > 0).ok_or_else(bad)
}

/// A duration for people: `8 hours`, `30 minutes`, `45 seconds`, `2 days`.
pub fn describe_duration(secs: u64) -> String {
    let (n, unit) = if secs.is_multiple_of(86_400) && secs >= 86_400 {
        (secs / 86_400, "day")
    } else if secs.is_multiple_of(3600) && secs >= 3600 {
        (secs / 3600, "hour")
    } else if secs.is_multiple_of(60) && secs >= 60 {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_civil_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00");
        assert_eq!(format_time(1_700_000_000_000), "2023-11-14 22:13:20");
        assert_eq!(format_time(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(format_time(-1000), "1969-12-31 23:59:59");
        assert_eq!(
            format_zoned(1_700_000_000_000, Some(-330)),
            "2023-11-14 16:43:20 -05:30"
        );
        assert_eq!(
            format_zoned(1_700_000_000_000, None),
            "2023-11-14 22:13:20 UTC   "
        );
    }

    #[test]
    fn durations_parse_and_read_back() {
        assert_eq!(parse_duration("8h").unwrap(), 28_800);
        assert_eq!(describe_duration(28_800), "8 hours");
        assert_eq!(describe_duration(60), "1 minute");
        assert_eq!(describe_duration(90), "90 seconds");
        assert!(parse_duration("8").is_err() && parse_duration("0s").is_err());
    }
}
