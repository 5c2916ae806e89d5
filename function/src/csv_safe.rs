//! CSV for spreadsheets: the organizer's export (`cahier admin export`) and the open data
//! (`/api/petitions.csv`) both go through [`SafeCsv`].

use std::borrow::Cow;

/// OWASP's defence against formula injection: a cell that a spreadsheet would read as a
/// formula (`=`, `+`, `-`, `@`, tab, carriage return first) gets a leading single quote, so a
/// signer named `=HYPERLINK(...)` stays text in the organizer's spreadsheet.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// A CSV writer into memory whose every cell is [`neutralise`]d.
pub struct SafeCsv(csv::Writer<Vec<u8>>);

impl Default for SafeCsv {
    fn default() -> Self {
        SafeCsv::new()
    }
}

impl SafeCsv {
    pub fn new() -> SafeCsv {
        SafeCsv(csv::Writer::from_writer(Vec::new()))
    }

    pub fn write_record<I, S>(&mut self, cells: I) -> csv::Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.0.write_record(
            cells
                .into_iter()
                .map(|c| neutralise(c.as_ref()).into_owned()),
        )
    }

    pub fn finish(self) -> anyhow::Result<Vec<u8>> {
        self.0
            .into_inner()
            .map_err(|e| anyhow::anyhow!("writing CSV: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_leading_formula_sign_is_quoted() {
        let mut w = SafeCsv::new();
        w.write_record(["=HYPERLINK(\"x\")", "a=b", "-1", "@SUM", "plain"])
            .unwrap();
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(out, "\"'=HYPERLINK(\"\"x\"\")\",a=b,'-1,'@SUM,plain\n");
    }
}
