//! Walking a TOML document with its spans, shared by the config files: the
//! cluster config ([`crate::config`]) and the service files
//! ([`crate::service`]).
//!
//! [`Walker`] turns every problem into a [`ConfigError`] that names the file,
//! the line and column, and the field path (`network[1].interval`, 0-based
//! indexes in file order), and says what is allowed. Nothing here panics on
//! any input.

use crate::config::{ConfigError, MAX_NAME_LEN, NodeConfig};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::fmt;
use std::ops::{Range, RangeInclusive};
use std::path::Path;
use std::time::Duration;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A value with where it is written.
pub(crate) type Value<'i> = Spanned<DeValue<'i>>;
/// A key with where it is written.
pub(crate) type Key<'i> = Spanned<Cow<'i, str>>;

/// What a cluster, node, network or service name may be.
pub(crate) const NAME_RULE: &str =
    "use 1 to 32 characters from A-Z a-z 0-9 _ . -, starting with a letter or digit";

/// A table of the document, with where it is and its field path.
pub(crate) struct Section<'v, 'i> {
    pub map: &'v DeTable<'i>,
    pub span: Range<usize>,
    /// Field path of the table (`network[0]`); empty for the root.
    pub path: String,
}

impl<'v, 'i> Section<'v, 'i> {
    /// The document's root table.
    pub fn root(doc: &'v Spanned<DeTable<'i>>) -> Self {
        Section {
            map: doc.get_ref(),
            span: doc.span(),
            path: String::new(),
        }
    }

    /// Field path of `key` in this table.
    pub fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub fn get(&self, key: &str) -> Option<&'v Value<'i>> {
        self.map.get(key)
    }

    /// Where `key` is written (the table header when it is not).
    pub fn key_span(&self, key: &str) -> Range<usize> {
        self.map
            .get_key_value(key)
            .map_or_else(|| self.span.clone(), |(k, _)| k.span())
    }

    /// The entries in file order.
    pub fn entries(&self) -> Vec<(&'v Key<'i>, &'v Value<'i>)> {
        let mut entries: Vec<_> = self.map.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        entries
    }
}

/// Reads one config file's text, turning each problem into a [`ConfigError`].
pub(crate) struct Walker<'a> {
    pub text: &'a str,
    pub file: &'a Path,
}

impl<'a> Walker<'a> {
    /// An error at `span` about `field`.
    pub fn err(&self, span: &Range<usize>, field: &str, message: impl Into<String>) -> ConfigError {
        let (line, column) = line_col(self.text, span.start);
        ConfigError {
            file: self.file.to_path_buf(),
            line: Some(line),
            column: Some(column),
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }

    /// The parsed document, or its TOML syntax error with its position.
    pub fn document(&self) -> Result<Spanned<DeTable<'a>>, ConfigError> {
        DeTable::parse(self.text).map_err(|e| {
            let (line, column) = match e.span() {
                Some(span) => {
                    let (l, c) = line_col(self.text, span.start);
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            ConfigError {
                file: self.file.to_path_buf(),
                line,
                column,
                field: None,
                message: match e.span().and_then(|span| self.text.get(span)) {
                    Some(at) if !at.is_empty() && at.len() <= 40 && !at.contains('\n') => {
                        format!("TOML syntax: {} (at `{at}`)", e.message())
                    }
                    _ => format!("TOML syntax: {}", e.message()),
                },
            }
        })
    }

    /// Refuses keys of `sec` not in `allowed`, naming the first one.
    pub fn only(&self, sec: &Section<'_, '_>, allowed: &[&str]) -> Result<(), ConfigError> {
        for (key, _) in sec.entries() {
            if !allowed.contains(&key.get_ref().as_ref()) {
                return Err(self.err(
                    &key.span(),
                    &sec.field(key.get_ref()),
                    format!(
                        "unknown key `{}`; allowed here: {}",
                        clip(key.get_ref()),
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Refuses `key` in `sec`.
    pub fn misplaced(
        &self,
        sec: &Section<'_, '_>,
        key: &str,
        message: &str,
    ) -> Result<(), ConfigError> {
        if sec.get(key).is_some() {
            return Err(self.err(&sec.key_span(key), &sec.field(key), message));
        }
        Ok(())
    }

    /// The value of `key`, which must be there; `what` describes it.
    pub fn required<'v, 'i>(
        &self,
        sec: &Section<'v, 'i>,
        key: &str,
        what: &str,
    ) -> Result<&'v Value<'i>, ConfigError> {
        sec.get(key).ok_or_else(|| {
            self.err(
                &sec.span,
                &sec.field(key),
                format!("missing required key `{key}` ({what})"),
            )
        })
    }

    /// `v` as a table called `path`; `what` describes the table expected.
    pub fn section<'v, 'i>(
        &self,
        v: &'v Value<'i>,
        path: String,
        what: &str,
    ) -> Result<Section<'v, 'i>, ConfigError> {
        match v.get_ref() {
            DeValue::Table(map) => Ok(Section {
                map,
                span: v.span(),
                path,
            }),
            other => Err(self.err(
                &v.span(),
                &path,
                format!("expected {what}, found {}", describe(other)),
            )),
        }
    }

    /// `[[key]]` tables of the root, 1 to `max` of them.
    pub fn array_of_tables<'v, 'i>(
        &self,
        root: &Section<'v, 'i>,
        key: &str,
        max: usize,
    ) -> Result<Vec<Section<'v, 'i>>, ConfigError> {
        let at_least = format!("at least one [[{key}]] table is required");
        let Some(v) = root.get(key) else {
            return Err(self.err(&root.span, key, at_least));
        };
        let tables = self.tables_in(v, key, max)?;
        if tables.is_empty() {
            return Err(self.err(&v.span(), key, at_least));
        }
        Ok(tables)
    }

    /// `[[key]]` tables of the root, 0 to `max` of them.
    pub fn optional_tables<'v, 'i>(
        &self,
        root: &Section<'v, 'i>,
        key: &str,
        max: usize,
    ) -> Result<Vec<Section<'v, 'i>>, ConfigError> {
        match root.get(key) {
            None => Ok(Vec::new()),
            Some(v) => self.tables_in(v, key, max),
        }
    }

    fn tables_in<'v, 'i>(
        &self,
        v: &'v Value<'i>,
        key: &str,
        max: usize,
    ) -> Result<Vec<Section<'v, 'i>>, ConfigError> {
        let DeValue::Array(items) = v.get_ref() else {
            return Err(self.err(
                &v.span(),
                key,
                format!(
                    "write each {key} as a [[{key}]] table; found {}",
                    describe(v.get_ref())
                ),
            ));
        };
        if let Some(extra) = items.get(max) {
            return Err(self.err(
                &extra.span(),
                &format!("{key}[{max}]"),
                format!("at most {max} [[{key}]] tables are allowed"),
            ));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                self.section(item, format!("{key}[{i}]"), &format!("a [[{key}]] table"))
            })
            .collect()
    }

    /// `v` as a string; `what` describes the string expected.
    pub fn string<'v>(
        &self,
        v: &'v Value<'_>,
        field: &str,
        what: &str,
    ) -> Result<&'v str, ConfigError> {
        match v.get_ref() {
            DeValue::String(s) => Ok(s),
            other => Err(self.err(
                &v.span(),
                field,
                format!("expected {what}, found {}", describe(other)),
            )),
        }
    }

    /// A cluster, node, network or service name (see [`NAME_RULE`]).
    pub fn name(&self, v: &Value<'_>, field: &str) -> Result<String, ConfigError> {
        let name = self.string(v, field, "a name in quotes, e.g. \"alpha\"")?;
        if !valid_name(name) {
            return Err(self.err(
                &v.span(),
                field,
                format!("`{}` is not a valid name; {NAME_RULE}", clip(name)),
            ));
        }
        Ok(name.to_owned())
    }

    /// A whole number from `lo` to `hi`.
    pub fn int<T>(&self, v: &Value<'_>, field: &str, lo: T, hi: T) -> Result<T, ConfigError>
    where
        T: Copy + fmt::Display + Into<i64> + TryFrom<i64>,
    {
        let range = format!("allowed {lo} to {hi}");
        let DeValue::Integer(i) = v.get_ref() else {
            return Err(self.err(
                &v.span(),
                field,
                format!(
                    "expected a whole number, {range}; found {}",
                    describe(v.get_ref())
                ),
            ));
        };
        match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) if (lo.into()..=hi.into()).contains(&n) => T::try_from(n)
                .map_err(|_| self.err(&v.span(), field, format!("{n} is out of range; {range}"))),
            Ok(n) => Err(self.err(&v.span(), field, format!("{n} is out of range; {range}"))),
            Err(_) => Err(self.err(
                &v.span(),
                field,
                format!("{} is out of range; {range}", clip(i.as_str())),
            )),
        }
    }

    /// `true` or `false`.
    pub fn boolean(&self, v: &Value<'_>, field: &str) -> Result<bool, ConfigError> {
        match v.get_ref() {
            DeValue::Boolean(b) => Ok(*b),
            DeValue::String(s) => Err(self.err(
                &v.span(),
                field,
                format!(
                    "expected true or false without quotes, found the string \"{}\"",
                    clip(s)
                ),
            )),
            other => Err(self.err(
                &v.span(),
                field,
                format!("expected true or false, found {}", describe(other)),
            )),
        }
    }

    /// A time: a string with a unit within `range`. `examples` are two
    /// quoted examples for the messages, e.g. `["\"100ms\"", "\"1s\""]`.
    pub fn duration(
        &self,
        v: &Value<'_>,
        field: &str,
        range: RangeInclusive<Duration>,
        examples: [&str; 2],
    ) -> Result<Duration, ConfigError> {
        let [ex1, ex2] = examples;
        let allowed = format!("allowed {} to {}", show(*range.start()), show(*range.end()));
        let text = match v.get_ref() {
            DeValue::String(s) => s,
            DeValue::Integer(_) | DeValue::Float(_) => {
                return Err(self.err(
                    &v.span(),
                    field,
                    format!(
                        "a bare number has no unit; write a time with a unit, e.g. {ex1}; {allowed}"
                    ),
                ));
            }
            other => {
                return Err(self.err(
                    &v.span(),
                    field,
                    format!(
                        "expected a time with a unit, e.g. {ex1}; found {}",
                        describe(other)
                    ),
                ));
            }
        };
        let d = humantime::parse_duration(text).map_err(|e| {
            self.err(
                &v.span(),
                field,
                format!(
                    "`{}` is not a time ({e}); write a time with a unit, e.g. {ex1} or {ex2}",
                    clip(text)
                ),
            )
        })?;
        if !range.contains(&d) {
            return Err(self.err(
                &v.span(),
                field,
                format!("{} is out of range; {allowed}", show(d)),
            ));
        }
        Ok(d)
    }

    /// Refuses a node name (written at `span`) that is not a declared node.
    pub fn declared(
        &self,
        span: &Range<usize>,
        name: &str,
        field: &str,
        nodes: &[NodeConfig],
    ) -> Result<(), ConfigError> {
        if nodes.iter().any(|n| n.name == name) {
            return Ok(());
        }
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        Err(self.err(
            span,
            field,
            format!(
                "`{}` is not a declared node; declared nodes: {}",
                clip(name),
                names.join(", ")
            ),
        ))
    }
}

/// A cluster, node, network or service name: see [`NAME_RULE`].
pub(crate) fn valid_name(s: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&s.len())
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A unix user or group name: a valid name not starting with `-`.
pub(crate) fn valid_unix_name(s: &str) -> bool {
    valid_name(s) && !s.starts_with('-')
}

pub(crate) fn ip_family(v4: bool) -> &'static str {
    if v4 { "IPv4" } else { "IPv6" }
}

/// A value's type, for "found ..." in messages.
pub(crate) fn describe(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// At most 40 characters of user text, for messages.
pub(crate) fn clip(s: &str) -> Cow<'_, str> {
    match s.char_indices().nth(40) {
        Some((end, _)) => Cow::Owned(format!("{}...", s.get(..end).unwrap_or_default())),
        None => Cow::Borrowed(s),
    }
}

/// A time as written in the config files (`1s 500ms`).
pub(crate) fn show(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = text.get(..end).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(start..).unwrap_or_default().chars().count() + 1;
    (line, column)
}

/// First 4 bytes (big-endian) of SHA-256 over the JSON of a canonical form.
pub(crate) fn canonical_hash<T: Serialize>(canon: &T) -> u32 {
    let bytes = serde_json::to_vec(canon).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    let mut first = [0u8; 4];
    for (out, b) in first.iter_mut().zip(digest.iter()) {
        *out = *b;
    }
    u32::from_be_bytes(first)
}

/// Helpers for the config tests.
#[cfg(test)]
pub(crate) mod testing {
    use crate::config::ConfigError;

    /// 1-based line of the first line containing `needle`.
    pub fn line_of(text: &str, needle: &str) -> usize {
        text.lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("{needle} not in text"))
    }

    /// Asserts `e` is on `line` (with a column), about `field`; returns it.
    pub fn assert_at(e: &ConfigError, line: usize, field: &str) -> ConfigError {
        assert_eq!(e.line, Some(line), "{e}");
        assert_eq!(e.field.as_deref(), Some(field), "{e}");
        assert!(e.column.is_some(), "{e}");
        e.clone()
    }

    /// `text` with line `line` (modulo the line count) replaced by `junk`.
    pub fn replace_line(text: &str, line: usize, junk: &str) -> String {
        let mut lines: Vec<&str> = text.lines().collect();
        let at = line % lines.len();
        lines[at] = junk;
        lines.join("\n")
    }

    /// `text` with the value of line `line` (if it is `key = value`)
    /// replaced by `junk` as a TOML string.
    pub fn replace_value(text: &str, line: usize, junk: &str) -> String {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let at = line % lines.len();
        if let Some((key, _)) = lines[at].split_once(" = ") {
            lines[at] = format!("{key} = {junk:?}");
        }
        lines.join("\n")
    }
}
