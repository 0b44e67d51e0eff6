//! `www`: an HTTP/1.0 GET of a URL answers with the expected status, and
//! optionally a body holding a given text. Plain HTTP only (no TLS).

use super::Check;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Most bytes of a response read (headers and body).
const MAX_RESPONSE: usize = 1024 * 1024;

/// Most response headers parsed.
const MAX_HEADERS: usize = 64;

/// The WWW agent's flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Www {
    /// The page to fetch: http://HOST[:PORT]/PATH (an IPv6 address in
    /// brackets). https is not supported: point at a plain-HTTP port.
    #[arg(long, value_parser = Url::parse)]
    pub url: Url,
    /// The HTTP status the page must answer with.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(100..=599))]
    pub status: u16,
    /// A text the response body must contain.
    #[arg(long, value_name = "TEXT")]
    pub body: Option<String>,
}

/// An http:// URL, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// Without brackets.
    pub host: String,
    pub port: u16,
    /// Starts with `/`.
    pub path: String,
}

impl Url {
    pub fn parse(text: &str) -> Result<Url, String> {
        let bad = |why: &str| format!("{text:?}: {why}: expected http://HOST[:PORT]/PATH");
        if text.len() >= 8 && text[..8].eq_ignore_ascii_case("https://") {
            return Err(bad("https is not supported (no TLS)"));
        }
        let rest = match text.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("http://") => &text[7..],
            _ => return Err(bad("not an http:// URL")),
        };
        if rest.chars().any(|c| c.is_control() || c == ' ') {
            return Err(bad("blanks or control characters"));
        }
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_owned()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_owned()),
        };
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ]"))?),
            };
            (host, port)
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            None => 80,
            Some(p) => p
                .parse()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| bad("bad port"))?,
        };
        Ok(Url {
            host: host.to_owned(),
            port,
            path,
        })
    }

    /// The Host header's value.
    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl Check for Www {
    const ABOUT: &'static str = "Watches a web server: an HTTP/1.0 GET of --url must answer \
         with --status (default 200) and, with --body, a body containing that text.";
    const AFTER_HELP: &'static str = "Plain HTTP only: there is no TLS client, so check an http:// URL (a local plain-HTTP \
         port of the server if the public one is https). Redirects are not followed: a 301 or \
         302 is the status checked.";

    async fn check(&self, _timeout: Duration) -> Result<(), String> {
        let response = fetch(&self.url).await?;
        judge(&response, self.status, self.body.as_deref())
    }
}

/// The raw response to a GET of `url`.
async fn fetch(url: &Url) -> Result<Vec<u8>, String> {
    let target = format!("{}:{}", url.host_header(), url.port);
    let mut stream = tokio::net::TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("cannot connect to {target}: {e}"))?;
    let request = format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: hacluster-www-agent\r\nConnection: close\r\n\r\n",
        url.path,
        url.host_header()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("cannot send the request to {target}: {e}"))?;
    let mut response = Vec::new();
    (&mut stream)
        .take(MAX_RESPONSE as u64)
        .read_to_end(&mut response)
        .await
        .map_err(|e| format!("reading the response of {target}: {e}"))?;
    Ok(response)
}

/// Checks a raw response's status and body.
fn judge(response: &[u8], want: u16, body: Option<&str>) -> Result<(), String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut headers);
    let head = match parsed.parse(response) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if response.is_empty() => {
            return Err("the server closed the connection without a response".to_owned());
        }
        Ok(httparse::Status::Partial) => return Err("the response was cut short".to_owned()),
        Err(e) => return Err(format!("not an HTTP response: {e}")),
    };
    let status = parsed.code.unwrap_or_default();
    if status != want {
        return Err(format!(
            "HTTP status {status} {}, expected {want}",
            parsed.reason.unwrap_or_default()
        ));
    }
    if let Some(text) = body {
        let found = response[head..]
            .windows(text.len().max(1))
            .any(|w| w == text.as_bytes());
        if !found {
            return Err(format!("the page does not contain {text:?}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_split() {
        let u = Url::parse("http://192.0.2.100/").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("192.0.2.100", 80, "/")
        );
        let u = Url::parse("HTTP://[2001:db8::1]:8080/a/b?c=d").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("2001:db8::1", 8080, "/a/b?c=d")
        );
        assert_eq!(u.host_header(), "[2001:db8::1]:8080");
        let u = Url::parse("http://www.example.com?x").unwrap();
        assert_eq!(u.path, "/?x");
        for bad in [
            "https://x/",
            "ftp://x/",
            "http://",
            "http://x:y/",
            "http://x:0/",
            "http://[::1/",
            "http://a b/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn status_and_body_are_judged() {
        let ok = b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<h1>Welcome</h1>";
        assert_eq!(judge(ok, 200, None), Ok(()));
        assert_eq!(judge(ok, 200, Some("Welcome")), Ok(()));
        assert!(
            judge(ok, 200, Some("Goodbye"))
                .unwrap_err()
                .contains("does not contain")
        );
        assert!(judge(ok, 204, None).unwrap_err().contains("status 200"));
        let err = b"HTTP/1.1 503 Service Unavailable\r\n\r\n";
        assert!(
            judge(err, 200, None)
                .unwrap_err()
                .contains("503 Service Unavailable")
        );
        assert!(
            judge(b"", 200, None)
                .unwrap_err()
                .contains("without a response")
        );
        assert!(
            judge(b"HTTP/1.0 200 OK\r\n", 200, None)
                .unwrap_err()
                .contains("cut short")
        );
        assert!(
            judge(b"garbage\r\n\r\n", 200, None)
                .unwrap_err()
                .contains("not an HTTP")
        );
    }
}
