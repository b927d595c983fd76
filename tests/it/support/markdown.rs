//! Markdown as GitHub shows it, for the documentation tests.

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.
pub(crate) fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}
