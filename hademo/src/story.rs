//! What the demo prints about times and logs: the time of day as the logs
//! write it, durations in seconds, and the story of a move told by both
//! nodes' log lines in time order.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The log lines that tell how a service moved (loss, fence, state
/// changes, floating IP, start and stop).
const STORY: [&str; 12] = [
    "lost",
    "fenc",
    "NodeDown",
    " -> ",
    "floating IP",
    "removed",
    "start of ips done",
    "application done",
    "take-over",
    "confirmed",
    "take it over",
    "stopping here",
];

/// Prints the story lines of each node's `(node, log text)`, in time
/// order, the date cut off.
pub fn print_story(logs: &[(&str, String)]) {
    let mut lines: Vec<(&str, &str)> = logs
        .iter()
        .flat_map(|(node, log)| {
            log.lines()
                .filter(|l| STORY.iter().any(|s| l.contains(s)))
                .map(move |l| (l, *node))
        })
        .collect();
    // The lines start with an RFC 3339 UTC time: text order is time order.
    lines.sort();
    for (line, node) in lines {
        let line = line.split_once('T').map_or(line, |(_, rest)| rest);
        // 21:38:40.323200Z -> 21:38:40.323
        let line = match (line.get(..12), line.find('Z')) {
            (Some(time), Some(z)) => format!("{time}{}", &line[z + 1..]),
            _ => line.to_owned(),
        };
        println!("  {node:<5} {line}");
    }
}

/// The time of day (UTC, as in the logs): `21:40:13.743`.
pub fn now_utc() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let (s, ms) = (since.as_secs() % 86_400, since.subsec_millis());
    format!("{:02}:{:02}:{:02}.{ms:03}", s / 3600, s / 60 % 60, s % 60)
}

/// A duration in seconds, one decimal: `3.2 s`.
pub fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}
