//! Parsers for command-line values: sizes (`20MiB`) and durations (`15s`).

use std::time::Duration;

/// Parses a byte size: a number with an optional unit (`B`, `KB`, `KiB`, `MB`, `MiB`, `GB`,
/// `GiB`, case-insensitive).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("{text:?} is not a size such as 20MiB"))?;
    let multiplier: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("unknown size unit {other:?} in {text:?}")),
    };
    Ok((number * multiplier) as usize)
}

/// Parses a duration such as `15s`, `500ms`, `2m`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| format!("{text:?} is not a duration such as 15s: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("20MiB"), Ok(20 << 20));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("soon").is_err());
    }
}

/// Parses an RFC 3339 time into ns since the epoch.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let time = chrono::DateTime::parse_from_rfc3339(text.trim())
        .map_err(|e| format!("{text:?} is not an RFC 3339 time such as 2026-11-25T14:00:00Z: {e}"))?;
    time.timestamp_nanos_opt().ok_or_else(|| format!("{text:?} is out of range"))
}
