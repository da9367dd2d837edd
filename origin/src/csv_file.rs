//! The console's CSV downloads: rows written with the `csv` crate (RFC 4180
//! quoting) and answered as an attachment. A cell that a spreadsheet would read
//! as a formula (OWASP's CSV injection: it begins with `=`, `+`, `-`, `@`, a tab
//! or a carriage return) is written with a `'` in front, so it opens as text.

use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ApiResult};

pub struct CsvFile(csv::Writer<Vec<u8>>);

impl CsvFile {
    /// A file whose first line is `header`.
    pub fn new(header: &[&str]) -> ApiResult<Self> {
        let mut file = Self(csv::Writer::from_writer(Vec::new()));
        file.row(header)?;
        Ok(file)
    }

    pub fn row(&mut self, fields: &[&str]) -> ApiResult<()> {
        self.0
            .write_record(fields.iter().map(|f| inert(f).into_owned()))
            .map_err(|e| ApiError::Internal(e.into()))
    }

    /// The answer: `text/csv`, downloaded as `filename`.
    pub fn attachment(self, filename: &str) -> ApiResult<Response> {
        let bytes = self
            .0
            .into_inner()
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
        Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{filename}\""),
                ),
            ],
            bytes,
        )
            .into_response())
    }
}

/// `cell` as a spreadsheet will read it as text: a `'` before a leading
/// formula character. Numbers (`-5`, `+1.5`) stay as they are: they are read
/// as numbers, never run.
fn inert(cell: &str) -> std::borrow::Cow<'_, str> {
    let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && cell.parse::<f64>().is_err() {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

#[cfg(test)]
mod tests {
    use super::inert;

    #[test]
    fn formulas_open_as_text_and_everything_else_is_unchanged() {
        for (cell, written) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+SUM(A1:A9)", "'+SUM(A1:A9)"),
            ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
            ("@SUM(1)", "'@SUM(1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("-evil", "'-evil"),
            ("Floor", "Floor"),
            ("a=b", "a=b"),
            ("", ""),
            ("-5", "-5"),
            ("+1.5", "+1.5"),
            ("2026-12-07T18:00:00Z", "2026-12-07T18:00:00Z"),
        ] {
            assert_eq!(inert(cell), written, "{cell:?}");
        }
    }
}
