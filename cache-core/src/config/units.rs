//! Durations ("250ms", "5m", "6h") and sizes ("64mb", "512kb").
//! (Being written: see the config branch.)

use std::time::Duration;

/// Parses a duration such as `250ms`, `30s`, `5m`, `6h`, `1d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| e.to_string())
}

/// Parses a size in bytes such as `64mb`, `512kb`, `1gb` or `1048576`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    text.parse::<u64>().map_err(|e| e.to_string())
}
