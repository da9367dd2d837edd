//! Presale codes (`core::presale`): operators generate, upload and export an
//! event's codes; [`admit`] decides whether an account may buy inside the
//! presale window. A code binds to the first account that uses it; an account
//! holds at most one code per event and needs to send it only once.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::Response;
use rushgate_core::ErrorCode;
use rushgate_core::api::{GenerateCodes, PresaleCodes};
use rushgate_core::presale::{self, MAX_CODES};
use sqlx::PgPool;
use time::format_description::well_known::Rfc3339;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::csv_file::CsvFile;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Id, Staff};

/// The largest CSV upload: a full event's codes with room for a second column.
const MAX_UPLOAD_BYTES: usize = 4 * 1024 * 1024;

/// The most codes one request generates.
const MAX_GENERATE: u32 = 10_000;

pub fn router() -> OpenApiRouter<AppState> {
    let csv = OpenApiRouter::new()
        .routes(routes!(upload, export))
        .layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES));
    OpenApiRouter::new().routes(routes!(generate)).merge(csv)
}

/// Whether `user_id` may buy in the presale of `event_id`: they hold a code
/// already, or `code` is one nobody holds yet (it binds to them now).
pub async fn admit(db: &PgPool, event_id: i64, user_id: i64, code: Option<&str>) -> ApiResult<()> {
    if holds_code(db, event_id, user_id).await? {
        return Ok(());
    }
    let Some(typed) = code else {
        return Err(ErrorCode::PresaleCodeRequired.into());
    };
    let code =
        presale::normalize(typed).map_err(|e| ApiError::invalid("presale_code", e.to_string()))?;
    let bound = sqlx::query(
        "UPDATE presale_codes SET user_id = $3, bound_at = now() \
         WHERE event_id = $1 AND code = $2 AND user_id IS NULL",
    )
    .bind(event_id)
    .bind(&code)
    .bind(user_id)
    .execute(db)
    .await;
    match bound {
        Ok(done) if done.rows_affected() == 1 => {
            tracing::info!(event_id, user_id, "presale code bound");
            return Ok(());
        }
        Ok(_) => {}
        // The account bound another code at the same moment: it holds one.
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let holder: Option<Option<i64>> =
        sqlx::query_scalar("SELECT user_id FROM presale_codes WHERE event_id = $1 AND code = $2")
            .bind(event_id)
            .bind(&code)
            .fetch_optional(db)
            .await?;
    match holder {
        Some(Some(holder)) if holder == user_id => Ok(()),
        Some(_) => Err(ErrorCode::PresaleCodeTaken.into()),
        None => Err(ApiError::refused(
            ErrorCode::PresaleCodeRequired,
            "no such presale code for this sale",
        )),
    }
}

async fn holds_code(db: &PgPool, event_id: i64, user_id: i64) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM presale_codes WHERE event_id = $1 AND user_id = $2)",
    )
    .bind(event_id)
    .bind(user_id)
    .fetch_one(db)
    .await
}

/// Adds `codes` (canonical, distinct) to the event, skipping those it has;
/// refuses the lot if the event would hold more than [`MAX_CODES`].
async fn add(db: &PgPool, event_id: i64, codes: &[String]) -> ApiResult<PresaleCodes> {
    let mut tx = db.begin().await?;
    // One writer per event at a time, so the count below stays true.
    sqlx::query("SELECT id FROM events WHERE id = $1 FOR UPDATE")
        .bind(event_id)
        .execute(&mut *tx)
        .await?;
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM presale_codes WHERE event_id = $1")
        .bind(event_id)
        .fetch_one(&mut *tx)
        .await?;
    let added = sqlx::query(
        "INSERT INTO presale_codes (event_id, code) SELECT $1, unnest($2::text[]) \
         ON CONFLICT DO NOTHING",
    )
    .bind(event_id)
    .bind(codes)
    .execute(&mut *tx)
    .await?
    .rows_affected() as i64;
    let total = held + added;
    if total > MAX_CODES as i64 {
        return Err(ApiError::invalid(
            "codes",
            format!("an event holds at most {MAX_CODES} codes; it holds {held}"),
        ));
    }
    tx.commit().await?;
    tracing::info!(event_id, added, total, "presale codes added");
    Ok(PresaleCodes { added, total })
}

#[utoipa::path(post, path = "/api/admin/events/{id}/presale/codes", tag = "console", params(("id" = i64, Path, description = "event id")), security(("bearer" = []), ("cookie" = [])), request_body = GenerateCodes, responses((status = 200, description = "new random codes added; export them as CSV", body = PresaleCodes), crate::openapi::Managed, crate::openapi::Common))]
async fn generate(
    State(state): State<AppState>,
    user: Staff,
    Id(id): Id,
    ApiJson(body): ApiJson<GenerateCodes>,
) -> ApiResult<Json<PresaleCodes>> {
    crate::admin::managed(&state, user, id).await?;
    if !(1..=MAX_GENERATE).contains(&body.generate) {
        return Err(ApiError::invalid(
            "generate",
            format!("must be between 1 and {MAX_GENERATE}"),
        ));
    }
    let codes: Vec<String> = (0..body.generate)
        .map(|_| presale::generate(rand::random()))
        .collect();
    Ok(Json(add(&state.db, id, &codes).await?))
}

#[utoipa::path(post, path = "/api/admin/events/{id}/presale/codes.csv", tag = "console", params(("id" = i64, Path, description = "event id")), security(("bearer" = []), ("cookie" = [])), request_body(content = String, content_type = "text/csv", description = "one code per line in the first column; an optional `code` header; codes in any case, with or without dashes"), responses((status = 200, description = "the codes the event did not hold yet were added", body = PresaleCodes), crate::openapi::Managed, crate::openapi::Common))]
async fn upload(
    State(state): State<AppState>,
    user: Staff,
    Id(id): Id,
    body: Bytes,
) -> ApiResult<Json<PresaleCodes>> {
    crate::admin::managed(&state, user, id).await?;
    let codes = parse_upload(&body)?;
    Ok(Json(add(&state.db, id, &codes).await?))
}

/// An uploaded CSV → its codes, canonical and each once. A line that is not
/// a code refuses the whole upload, naming the line.
fn parse_upload(body: &[u8]) -> ApiResult<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(body);
    let mut codes = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 1;
        let record = record.map_err(|e| ApiError::invalid("codes", format!("line {line}: {e}")))?;
        let first = record.get(0).unwrap_or("");
        if first.is_empty() || (i == 0 && first.eq_ignore_ascii_case("code")) {
            continue;
        }
        let code = presale::normalize(first)
            .map_err(|e| ApiError::invalid("codes", format!("line {line}: {e}")))?;
        if seen.insert(code.clone()) {
            codes.push(code);
        }
        if codes.len() > MAX_CODES {
            return Err(ApiError::invalid(
                "codes",
                format!("at most {MAX_CODES} codes"),
            ));
        }
    }
    if codes.is_empty() {
        return Err(ApiError::invalid("codes", "the upload holds no codes"));
    }
    Ok(codes)
}

#[derive(sqlx::FromRow)]
struct CodeRow {
    code: String,
    user_id: Option<i64>,
    bound_at: Option<time::OffsetDateTime>,
}

#[utoipa::path(get, path = "/api/admin/events/{id}/presale/codes.csv", tag = "console", params(("id" = i64, Path, description = "event id")), security(("bearer" = []), ("cookie" = [])), responses((status = 200, description = "every code of the event: code,user_id,bound_at (empty while unbound)", content_type = "text/csv", body = String), crate::openapi::Managed, crate::openapi::Common))]
async fn export(State(state): State<AppState>, user: Staff, Id(id): Id) -> ApiResult<Response> {
    crate::admin::managed(&state, user, id).await?;
    let rows: Vec<CodeRow> = sqlx::query_as(
        "SELECT code, user_id, bound_at FROM presale_codes WHERE event_id = $1 \
         ORDER BY created_at, code",
    )
    .bind(id)
    .fetch_all(&state.db)
    .await?;
    let mut file = CsvFile::new(&["code", "user_id", "bound_at"])?;
    for row in &rows {
        let user = row.user_id.map(|u| u.to_string()).unwrap_or_default();
        let at = row
            .bound_at
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default();
        file.row(&[&row.code, &user, &at])?;
    }
    file.attachment(&format!("event-{id}-presale-codes.csv"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_take_a_header_blank_lines_repeats_and_any_spelling() {
        let a = presale::generate([1; presale::BODY_LEN]);
        let b = presale::generate([2; presale::BODY_LEN]);
        let text = format!(
            "code,note\n{a},first\n\n{},extra\n\"{}\"\n{a}\n",
            b.to_lowercase(),
            b.replace('-', "")
        );
        assert_eq!(parse_upload(text.as_bytes()).unwrap(), vec![a.clone(), b]);
        let bad = format!("{a}\nNOT-A-CODE\n");
        let ApiError::Refused(body) = parse_upload(bad.as_bytes()).unwrap_err() else {
            panic!("refused");
        };
        assert_eq!(body.field.as_deref(), Some("codes"));
        assert!(body.message.starts_with("line 2:"), "{}", body.message);
        assert!(matches!(
            parse_upload(b"code\n\n").unwrap_err(),
            ApiError::Refused(b) if b.error == ErrorCode::InvalidInput
        ));
    }
}
