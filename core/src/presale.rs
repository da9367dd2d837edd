//! Presale codes: a window before the general sale in which only holders of a
//! code may join the queue or ask for a purchase URL. A code is ten characters
//! of Crockford's base32 without Z (no I, L, O, U: nothing to misread; 31
//! symbols, a prime, for the check) plus a check character that catches any
//! one mistyped character and any swap of two neighbours, written
//! `XXXX-XXXX-XXC`; people may type it in any case, with or without dashes or
//! spaces. A code binds to the first account that uses it and admits only that
//! account afterwards.
//!
//! Operators generate codes or upload them as CSV (one code per line, an
//! optional `code` header) and export them with their bindings.

use std::collections::HashSet;

/// Crockford's base32 alphabet without Z.
const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKMNPQRSTVWXY";

/// Characters of a code before its check character.
pub const BODY_LEN: usize = 10;

/// The most codes one event holds (and one upload carries).
pub const MAX_CODES: usize = 100_000;

/// Why a code or an upload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresaleError {
    #[error("a presale code is {BODY_LEN} letters and digits and a check character")]
    Malformed,
    #[error("this code has a typo (its check character does not match)")]
    BadCheck,
    #[error("line {line}: {reason}")]
    Upload { line: usize, reason: String },
    #[error("at most {MAX_CODES} codes")]
    TooMany,
}

/// A new code from random bytes (one character per byte).
pub fn generate(random: [u8; BODY_LEN]) -> String {
    let body: Vec<u8> = random
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()])
        .collect();
    let body = String::from_utf8(body).expect("the alphabet is ASCII");
    format_code(&body)
}

/// `XXXXXXXXXX` → `XXXX-XXXX-XXC`.
fn format_code(body: &str) -> String {
    let check = ALPHABET[check_value(body)] as char;
    format!("{}-{}-{}{check}", &body[..4], &body[4..8], &body[8..])
}

/// The value of each character of `body`, weighted by position, mod 31: a
/// prime above every weight and every difference of two values, so any one
/// changed character, and any swap of two different neighbours, changes it.
fn check_value(body: &str) -> usize {
    body.bytes()
        .enumerate()
        .map(|(i, c)| (i + 1) * value(c).unwrap_or(0))
        .sum::<usize>()
        % 31
}

fn value(c: u8) -> Option<usize> {
    ALPHABET.iter().position(|a| *a == c)
}

/// A code as typed → its canonical form `XXXX-XXXX-XXC`. Case, dashes and
/// spaces do not matter; the letters people confuse with digits (O, I, L)
/// read as those digits.
pub fn normalize(typed: &str) -> Result<String, PresaleError> {
    let mut chars = Vec::with_capacity(BODY_LEN + 1);
    for c in typed.chars() {
        match c {
            '-' | ' ' => continue,
            'o' | 'O' => chars.push(b'0'),
            'i' | 'I' | 'l' | 'L' => chars.push(b'1'),
            c if c.is_ascii_alphanumeric() => {
                let upper = c.to_ascii_uppercase() as u8;
                value(upper).ok_or(PresaleError::Malformed)?;
                chars.push(upper);
            }
            _ => return Err(PresaleError::Malformed),
        }
        if chars.len() > BODY_LEN + 1 {
            return Err(PresaleError::Malformed);
        }
    }
    if chars.len() != BODY_LEN + 1 {
        return Err(PresaleError::Malformed);
    }
    let body = std::str::from_utf8(&chars[..BODY_LEN]).map_err(|_| PresaleError::Malformed)?;
    let code = format_code(body);
    if code.as_bytes()[code.len() - 1] != chars[BODY_LEN] {
        return Err(PresaleError::BadCheck);
    }
    Ok(code)
}

/// An uploaded CSV of codes → their canonical forms, each once (a code twice
/// in one upload is one code). The first line may be the header `code`; blank
/// lines are skipped; only the first column counts.
pub fn parse_csv(text: &str) -> Result<Vec<String>, PresaleError> {
    let mut seen = HashSet::new();
    let mut codes = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let first = line
            .split(',')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        if first.is_empty() || (i == 0 && first.eq_ignore_ascii_case("code")) {
            continue;
        }
        let code = normalize(first).map_err(|e| PresaleError::Upload {
            line: i + 1,
            reason: e.to_string(),
        })?;
        if seen.insert(code.clone()) {
            if codes.len() == MAX_CODES {
                return Err(PresaleError::TooMany);
            }
            codes.push(code);
        }
    }
    Ok(codes)
}

/// One code as exported: the code, and the account it is bound to (if any)
/// with when (unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRow {
    pub code: String,
    pub user_id: Option<i64>,
    pub bound_at: Option<i64>,
}

/// The export: `code,user_id,bound_at` (RFC 3339 UTC), one row per code.
pub fn to_csv(rows: &[CodeRow]) -> String {
    let mut out = String::from("code,user_id,bound_at\n");
    for row in rows {
        let user = row.user_id.map(|u| u.to_string()).unwrap_or_default();
        let at = row
            .bound_at
            .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        out.push_str(&format!("{},{user},{at}\n", row.code));
    }
    out
}

/// Whether `user_id` may use a code now bound to `bound_to`: the first user
/// binds it, and only they may use it again.
pub fn may_use(bound_to: Option<i64>, user_id: i64) -> bool {
    bound_to.is_none_or(|owner| owner == user_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_code_reads_back_however_it_is_typed() {
        let code = generate([1, 2, 3, 4, 5, 6, 7, 8, 9, 250]);
        assert_eq!(code.len(), 13);
        assert_eq!(normalize(&code), Ok(code.clone()));
        assert_eq!(normalize(&code.to_lowercase()), Ok(code.clone()));
        assert_eq!(normalize(&code.replace('-', " ")), Ok(code.clone()));
        assert_eq!(normalize(&code.replace('-', "")), Ok(code.clone()));
    }

    #[test]
    fn typos_and_swaps_are_caught() {
        let code = generate([7, 30, 12, 3, 19, 25, 0, 31, 14, 22]);
        let plain: Vec<u8> = code.replace('-', "").into_bytes();
        for i in 0..BODY_LEN {
            for replacement in ALPHABET {
                if *replacement == plain[i] {
                    continue;
                }
                let mut typo = plain.clone();
                typo[i] = *replacement;
                let typo = String::from_utf8(typo).unwrap();
                assert!(normalize(&typo).is_err(), "{typo} passed for {code}");
            }
            if i + 1 < BODY_LEN && plain[i] != plain[i + 1] {
                let mut swapped = plain.clone();
                swapped.swap(i, i + 1);
                let swapped = String::from_utf8(swapped).unwrap();
                assert!(normalize(&swapped).is_err(), "{swapped} passed for {code}");
            }
        }
    }

    #[test]
    fn look_alike_letters_read_as_digits_and_junk_is_refused() {
        let code = generate([0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
        let typed = code.replace('0', "o").replace('1', "l");
        assert_eq!(normalize(&typed), Ok(code));
        for junk in [
            "",
            "ABCD",
            "ABCD-EFGH-JKMN",
            "ABCD-EFGH-J!",
            "ÄBCD-EFGH-JKM",
        ] {
            assert!(normalize(junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn csv_uploads_take_a_header_blank_lines_and_repeats() {
        let a = generate([1; BODY_LEN]);
        let b = generate([2; BODY_LEN]);
        let text = format!("code\n{a}\n\n{},extra\n\"{b}\"\n{a}\n", b.to_lowercase());
        assert_eq!(parse_csv(&text), Ok(vec![a.clone(), b]));
        let bad = format!("{a}\nNOT-A-CODE\n");
        assert_eq!(
            parse_csv(&bad),
            Err(PresaleError::Upload {
                line: 2,
                reason: PresaleError::Malformed.to_string()
            })
        );
    }

    #[test]
    fn the_export_lists_bindings() {
        let rows = [
            CodeRow {
                code: "0000-0000-000".into(),
                user_id: Some(7),
                bound_at: Some(0),
            },
            CodeRow {
                code: "1111-1111-111".into(),
                user_id: None,
                bound_at: None,
            },
        ];
        assert_eq!(
            to_csv(&rows),
            "code,user_id,bound_at\n0000-0000-000,7,1970-01-01T00:00:00Z\n1111-1111-111,,\n"
        );
    }

    #[test]
    fn a_code_binds_to_its_first_user() {
        assert!(may_use(None, 5));
        assert!(may_use(Some(5), 5));
        assert!(!may_use(Some(5), 6));
    }
}
