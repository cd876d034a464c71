//! The analysis window a page shows: the last 15 minutes, hour or day, or a custom range.

use std::time::Duration;

use serde::Deserialize;

use crate::WebError;

/// Query parameters that choose a window: `?window=15m|1h|24h` (any duration such as `90m`), or
/// `?since=…&until=…` in RFC 3339.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WindowQuery {
    /// A duration back from now.
    pub window: Option<String>,
    /// Custom range start (RFC 3339).
    pub since: Option<String>,
    /// Custom range end (RFC 3339).
    pub until: Option<String>,
}

/// A window of span start times.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Window {
    /// From `now - duration` to now, moving.
    Last(Duration),
    /// A fixed range, ns since the epoch; either end may be open.
    Range {
        /// Start, inclusive.
        since: Option<i64>,
        /// End, exclusive.
        until: Option<i64>,
    },
}

/// Longest moving window: the dashboard is not a tool for months of data.
const LONGEST_WINDOW: Duration = Duration::from_secs(31 * 24 * 3600);

impl Window {
    /// The window the query asks for, else `default`.
    pub fn from_query(query: &WindowQuery, default: &Window) -> Result<Window, WebError> {
        let (since, until) = (time_parameter("since", &query.since)?, time_parameter("until", &query.until)?);
        if since.is_some() || until.is_some() {
            if let (Some(since), Some(until)) = (since, until)
                && since >= until
            {
                return Err(WebError::BadRequest("since must be before until".into()));
            }
            return Ok(Window::Range { since, until });
        }
        match query.window.as_deref().map(str::trim).filter(|w| !w.is_empty()) {
            None => Ok(default.clone()),
            Some("all") => Ok(Window::Range { since: None, until: None }),
            Some(text) => {
                let duration = humantime::parse_duration(text).map_err(|error| {
                    WebError::BadRequest(format!("window: {:?} is not a duration such as 15m: {error}", clip(text)))
                })?;
                if duration.is_zero() || duration > LONGEST_WINDOW {
                    return Err(WebError::BadRequest("window: between 1s and 31 days".into()));
                }
                Ok(Window::Last(duration))
            }
        }
    }

    /// `(since, until)` in ns since the epoch, as of `now`.
    pub fn bounds(&self, now_nano: i64) -> (Option<i64>, Option<i64>) {
        match self {
            Window::Last(duration) => (Some(now_nano - duration.as_nanos() as i64), None),
            Window::Range { since, until } => (*since, *until),
        }
    }

    /// A short label: `15m`, `all`, or the range.
    pub fn label(&self) -> String {
        match self {
            Window::Last(duration) => humantime::format_duration(*duration).to_string(),
            Window::Range { since: None, until: None } => "all".to_owned(),
            Window::Range { since, until } => {
                let end = |t: &Option<i64>| t.map(tracegap_analyze::findings::rfc3339).unwrap_or_else(|| "…".into());
                format!("{} – {}", end(since), end(until))
            }
        }
    }
}

/// An optional RFC 3339 query parameter, in ns since the epoch; the error names the parameter.
pub(crate) fn time_parameter(name: &str, text: &Option<String>) -> Result<Option<i64>, WebError> {
    let Some(text) = text.as_deref().filter(|t| !t.trim().is_empty()) else { return Ok(None) };
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|time| time.timestamp_nanos_opt())
        .map_err(|error| WebError::BadRequest(format!("{name}: {:?} is not an RFC 3339 time: {error}", clip(text))))
}

pub(crate) fn clip(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(window: Option<&str>, since: Option<&str>, until: Option<&str>) -> WindowQuery {
        WindowQuery { window: window.map(Into::into), since: since.map(Into::into), until: until.map(Into::into) }
    }

    #[test]
    fn windows_from_queries() {
        let default = Window::Last(Duration::from_secs(900));
        assert_eq!(Window::from_query(&query(None, None, None), &default).unwrap(), default);
        assert_eq!(
            Window::from_query(&query(Some("1h"), None, None), &default).unwrap(),
            Window::Last(Duration::from_secs(3600))
        );
        assert_eq!(
            Window::from_query(&query(Some("all"), None, None), &default).unwrap(),
            Window::Range { since: None, until: None }
        );
        let range = Window::from_query(&query(None, Some("2026-11-25T10:00:00Z"), None), &default).unwrap();
        assert_eq!(range, Window::Range { since: Some(1_795_600_800_000_000_000), until: None });
        assert!(Window::from_query(&query(Some("soon"), None, None), &default).is_err());
        assert!(Window::from_query(&query(Some("400d"), None, None), &default).is_err());
        let backwards = query(None, Some("2026-11-25T10:00:00Z"), Some("2026-11-25T09:00:00Z"));
        assert!(Window::from_query(&backwards, &default).is_err());
    }
}
