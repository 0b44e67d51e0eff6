//! A script's stdout and stderr, line by line, into the log: each line
//! prefixed with the service and the action, bounded in length, control
//! characters escaped so a script cannot forge or garble log lines.

use super::LogContext;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Longest line logged, in bytes; the rest of a longer line is dropped and
/// counted.
pub const MAX_LINE: usize = 4096;

/// Which output a line came from: stdout logs at INFO, stderr at WARN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stream {
    Stdout,
    Stderr,
}

/// Logs every line of `reader` until end of file (or a read error). The
/// memory held is bounded by [`MAX_LINE`] plus one read buffer, however
/// long the lines.
pub(super) async fn pump<R: AsyncRead + Unpin>(
    mut reader: R,
    stream: Stream,
    ctx: Arc<LogContext>,
) {
    let mut buf = vec![0u8; 8192];
    let mut line: Vec<u8> = Vec::with_capacity(256);
    let mut dropped = 0usize;
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            if b == b'\n' {
                emit(&ctx, stream, &line, dropped);
                line.clear();
                dropped = 0;
            } else if line.len() < MAX_LINE {
                line.push(b);
            } else {
                dropped += 1;
            }
        }
    }
    if !line.is_empty() || dropped > 0 {
        emit(&ctx, stream, &line, dropped);
    }
}

fn emit(ctx: &LogContext, stream: Stream, line: &[u8], dropped: usize) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut text = escape(&String::from_utf8_lossy(line));
    if dropped > 0 {
        text.push_str(&format!(" [line cut: {dropped} more bytes]"));
    }
    let (service, action) = (&ctx.service, &ctx.action);
    match stream {
        Stream::Stdout => tracing::info!("{service} {action}: {text}"),
        Stream::Stderr => tracing::warn!("{service} {action}: {text}"),
    }
}

/// Escapes control characters other than tab (`\u{1b}` for ESC, ...).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_control_characters() {
        assert_eq!(escape("a\tb\u{1b}[31mc\0"), "a\tb\\u{1b}[31mc\\u{0}");
        assert_eq!(escape("plain é"), "plain é");
    }
}
