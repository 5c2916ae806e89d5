//! Human-readable tables (plain ASCII borders, stable for tests and terminals alike).

use comfy_table::{presets, CellAlignment, Table};

/// A table with `headers`; columns whose header is in `numeric` are right-aligned.
pub fn table<I, R>(headers: &[&str], numeric: &[&str], rows: I) -> String
where
    I: IntoIterator<Item = R>,
    R: IntoIterator<Item = String>,
{
    let mut t = Table::new();
    t.load_preset(presets::ASCII_MARKDOWN);
    t.set_header(headers.iter().copied());
    for row in rows {
        t.add_row(row);
    }
    for (i, h) in headers.iter().enumerate() {
        if numeric.contains(h) {
            if let Some(col) = t.column_mut(i) {
                col.set_cell_alignment(CellAlignment::Right);
            }
        }
    }
    t.to_string()
}

/// The first 12 characters of a hash: enough to tell prefixes apart in a table.
pub fn short(hash: &str) -> String {
    hash.chars().take(12).collect()
}
