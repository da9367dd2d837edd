//! The console's CSV downloads: rows written with the `csv` crate (RFC 4180
//! quoting) and answered as an attachment.

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
            .write_record(fields)
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
