//! Presale codes: a window before the general sale in which only holders of a
//! code may ask for a purchase URL. A code is ten characters
//! of Crockford's base32 without Z (no I, L, O, U: nothing to misread; 31
//! symbols, a prime, for the check) plus a check character that catches any
//! one mistyped character and any swap of two neighbours, written
//! `XXXX-XXXX-XXC`; people may type it in any case, with or without dashes or
//! spaces. A code binds to the first account that uses it and admits only that
//! account afterwards.
//!
//! Operators generate codes or upload them as CSV, and export them with
//! their bindings (the origin's `presale` module).

/// Crockford's base32 alphabet without Z.
const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKMNPQRSTVWXY";

/// Characters of a code before its check character.
pub const BODY_LEN: usize = 10;

/// The most codes one event holds.
pub const MAX_CODES: usize = 100_000;

/// Why a typed code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresaleError {
    #[error("a presale code is {BODY_LEN} letters and digits and a check character")]
    Malformed,
    #[error("this code has a typo (its check character does not match)")]
    BadCheck,
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
}
