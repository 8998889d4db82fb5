//! Personal data detection and masking: mobile numbers, 18-digit resident ID
//! numbers (check digit validated), bank card numbers (Luhn validated) and
//! e-mail addresses.
//!
//! Masking runs before anything is logged, stored, classified or quoted as
//! evidence, so the unmasked value never leaves this module's caller.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

/// What kind of personal data was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    Mobile,
    IdNumber,
    BankCard,
    Email,
}

impl PiiKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Mobile => "mobile",
            PiiKind::IdNumber => "id_number",
            PiiKind::BankCard => "bank_card",
            PiiKind::Email => "email",
        }
    }
}

/// One piece of personal data, already masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PiiFinding {
    pub kind: PiiKind,
    /// The masked form that replaced it in the text.
    pub masked: String,
}

// Digit runs, allowing single spaces or hyphens between digit groups
// (`6222 0212 3456 7890`, `138-1234-5678`) and a final X for ID numbers.
static DIGIT_RUN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\d(?:[ -]?\d)*[Xx]?").unwrap());
static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}").unwrap());

/// Replace every piece of personal data in `text` with its masked form.
/// Returns the masked text and what was found, in text order.
pub fn mask(text: &str) -> (String, Vec<PiiFinding>) {
    let mut findings = Vec::new();
    // Fast path: most complaints carry no long digit run and no '@'.
    if !text.contains('@') && !has_long_digit_run(text) {
        return (text.to_owned(), findings);
    }
    let after_email = EMAIL.replace_all(text, |c: &regex::Captures| {
        let masked = mask_email(&c[0]);
        findings.push(PiiFinding {
            kind: PiiKind::Email,
            masked: masked.clone(),
        });
        masked
    });
    let masked = DIGIT_RUN.replace_all(&after_email, |c: &regex::Captures| {
        let run = &c[0];
        match classify_digits(run) {
            Some((kind, masked)) => {
                findings.push(PiiFinding {
                    kind,
                    masked: masked.clone(),
                });
                masked
            }
            None => run.to_owned(),
        }
    });
    (masked.into_owned(), findings)
}

fn has_long_digit_run(text: &str) -> bool {
    let mut run = 0;
    for b in text.bytes() {
        if b.is_ascii_digit() {
            run += 1;
            if run >= 11 {
                return true;
            }
        } else if b != b' ' && b != b'-' {
            run = 0;
        }
    }
    false
}

/// Decide whether a digit run is personal data; return the masked replacement.
fn classify_digits(run: &str) -> Option<(PiiKind, String)> {
    let digits: String = run.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let n = digits.len();
    let ends_with_x = digits.ends_with(['X', 'x']);
    if n == 18 && is_valid_id_number(&digits) {
        return Some((PiiKind::IdNumber, keep_ends(&digits, 4, 4)));
    }
    if ends_with_x {
        return None;
    }
    if n == 11 && digits.starts_with('1') && matches!(digits.as_bytes()[1], b'3'..=b'9') {
        return Some((PiiKind::Mobile, keep_ends(&digits, 3, 4)));
    }
    if (13..=19).contains(&n) && luhn_valid(&digits) {
        return Some((PiiKind::BankCard, keep_ends(&digits, 0, 4)));
    }
    None
}

fn keep_ends(s: &str, head: usize, tail: usize) -> String {
    let n = s.len();
    let mut out = String::with_capacity(n);
    out.push_str(&s[..head]);
    out.extend(std::iter::repeat_n('*', n - head - tail));
    out.push_str(&s[n - tail..]);
    out
}

fn mask_email(email: &str) -> String {
    let (local, domain) = email.split_once('@').unwrap_or((email, ""));
    let first = local.chars().next().unwrap_or('*');
    format!("{first}***@{domain}")
}

/// GB 11643-1999 check digit of an 18-character resident ID number.
pub fn is_valid_id_number(id: &str) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let bytes = id.as_bytes();
    if bytes.len() != 18 || !bytes[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = bytes[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(b, w)| (b - b'0') as u32 * w)
        .sum();
    bytes[17].to_ascii_uppercase() == CHECK[(sum % 11) as usize]
}

/// Luhn checksum used by bank card numbers.
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0;
    for (i, b) in digits.bytes().rev().enumerate() {
        if !b.is_ascii_digit() {
            return false;
        }
        let mut d = (b - b'0') as u32;
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    // 11010519491231002X is the standard's published example with a valid check digit.
    const VALID_ID: &str = "11010519491231002X";
    const INVALID_ID: &str = "110105194912310021";
    // 6222021234567890128 passes Luhn; changing the last digit breaks it.
    const VALID_CARD: &str = "6222021234567890128";

    #[test]
    fn masks_mobile_numbers_with_and_without_separators() {
        let (m, f) = mask("我电话13812345678，备用138-1234-5679");
        assert_eq!(m, "我电话138****5678，备用138****5679");
        assert_eq!(f.len(), 2);
        assert!(f.iter().all(|x| x.kind == PiiKind::Mobile));
    }

    #[test]
    fn masks_id_number_only_when_check_digit_is_valid() {
        assert!(is_valid_id_number(VALID_ID));
        assert!(!is_valid_id_number(INVALID_ID));
        let (m, f) = mask(&format!("身份证{VALID_ID}"));
        assert_eq!(m, "身份证1101**********002X");
        assert_eq!(f[0].kind, PiiKind::IdNumber);
        let (m, f) = mask(&format!("单号{INVALID_ID}"));
        assert_eq!(m, format!("单号{INVALID_ID}"));
        assert!(f.is_empty());
    }

    #[test]
    fn masks_bank_cards_only_when_luhn_is_valid() {
        assert!(luhn_valid(VALID_CARD));
        let (m, f) = mask(&format!("卡号{VALID_CARD}被盗刷"));
        assert_eq!(m, "卡号***************0128被盗刷");
        assert_eq!(f[0].kind, PiiKind::BankCard);
        let (m, _) = mask("卡号6222 0212 3456 7890 128");
        assert!(m.ends_with("0128"), "{m}");
        assert!(!m.contains("0212"));
        let broken = "6222021234567890127";
        assert!(!luhn_valid(broken));
        assert_eq!(mask(broken).0, broken);
    }

    #[test]
    fn masks_email_addresses() {
        let (m, f) = mask("请回复到zhang.san@example.com谢谢");
        assert_eq!(m, "请回复到z***@example.com谢谢");
        assert_eq!(f[0].kind, PiiKind::Email);
    }

    #[test]
    fn leaves_amounts_dates_and_hotlines_alone() {
        let text = "2024年3月12日被扣了3200元，打了95588和12378";
        assert_eq!(mask(text).0, text);
        assert!(mask(text).1.is_empty());
    }
}
