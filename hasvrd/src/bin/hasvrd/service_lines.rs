//! The small per-node files of hasvrd's state directory that hold one
//! `SERVICE VALUE` line per service (the fail counts, the operator's
//! choices): read back with a clear error naming the file and line.

use std::path::Path;

/// Reads `path` (`what` names it in errors): each non-empty line's service
/// and the value `parse` makes of the rest, in file order; nothing when
/// there is no file yet. A line `parse` refuses is an error that shows the
/// expected `form` and says how to `fix` it.
pub fn read<T>(
    path: &Path,
    what: &str,
    form: &str,
    fix: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<(String, T)>, String> {
    let Some(bytes) = haschema::private_file::read(path, what)? else {
        return Ok(Vec::new());
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut all = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let parsed = line
            .split_once(' ')
            .and_then(|(service, value)| Some((service, parse(value.trim())?)));
        let Some((service, value)) = parsed else {
            return Err(format!(
                "{} line {}: `{line}` is not `{form}`; {fix}",
                path.display(),
                i + 1
            ));
        };
        all.push((service.to_owned(), value));
    }
    Ok(all)
}
