//! Normalisation: one canonical form for text that arrives full-width,
//! in traditional characters, with stray control characters or odd spacing.
//!
//! Order matters: NFKC first (full-width digits and letters become ASCII, so
//! later regexes for amounts and personal data see `12378`, not `１２３７８`),
//! then traditional → simplified, then whitespace and control characters.

use unicode_normalization::UnicodeNormalization;

use crate::error::TriageError;

/// Limits applied while normalising.
#[derive(Debug, Clone)]
pub struct NormaliseLimits {
    /// Longest accepted text, counted in characters after normalisation.
    pub max_chars: usize,
}

impl Default for NormaliseLimits {
    fn default() -> Self {
        Self { max_chars: 5000 }
    }
}

/// Normalise `raw` into the canonical simplified, half-width, single-spaced form.
///
/// Errors: [`TriageError::EmptyText`] when nothing but whitespace or control
/// characters is left; [`TriageError::TextTooLong`] past `limits.max_chars`.
pub fn normalise(raw: &str, limits: &NormaliseLimits) -> Result<String, TriageError> {
    // Refuse absurd inputs before doing any work on them (4 bytes per char at most).
    let raw_chars_upper_bound = raw.len();
    if raw_chars_upper_bound > limits.max_chars.saturating_mul(8) {
        return Err(TriageError::TextTooLong {
            chars: raw.chars().count(),
            max: limits.max_chars,
        });
    }
    let nfkc: String = if raw.is_ascii() {
        raw.to_owned()
    } else {
        raw.nfkc().collect()
    };
    let simplified = if nfkc.is_ascii() {
        nfkc
    } else {
        zhconv::zhconv(&nfkc, zhconv::Variant::ZhCN)
    };
    let mut out = String::with_capacity(simplified.len());
    let mut pending_space = false;
    for ch in simplified.chars() {
        if ch.is_whitespace() || ch.is_control() || is_invisible(ch) {
            // Zero-width characters vanish; real whitespace collapses to one space.
            if ch.is_whitespace() || ch == '\u{3000}' {
                pending_space = true;
            }
            continue;
        }
        if pending_space && !out.is_empty() {
            out.push(' ');
        }
        pending_space = false;
        out.push(ch);
    }
    if out.is_empty() {
        return Err(TriageError::EmptyText);
    }
    let chars = out.chars().count();
    if chars > limits.max_chars {
        return Err(TriageError::TextTooLong {
            chars,
            max: limits.max_chars,
        });
    }
    Ok(out)
}

/// Zero-width and formatting characters that carry no meaning in a complaint.
fn is_invisible(ch: char) -> bool {
    matches!(ch, '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        normalise(s, &NormaliseLimits::default()).unwrap()
    }

    #[test]
    fn full_width_digits_and_letters_become_ascii() {
        assert_eq!(norm("打１２３７８投诉ＡＴＭ"), "打12378投诉ATM");
    }

    #[test]
    fn traditional_becomes_simplified() {
        assert_eq!(
            norm("我的信用卡被盜刷了，帳戶被凍結"),
            "我的信用卡被盗刷了,账户被冻结"
        );
    }

    #[test]
    fn whitespace_and_control_characters_collapse() {
        assert_eq!(
            norm("  年费\t\t太高\r\n了\u{200B}吧\u{0007} "),
            "年费 太高 了吧"
        );
    }

    #[test]
    fn empty_and_whitespace_only_are_errors() {
        assert!(matches!(
            normalise(" \n\t\u{3000}", &NormaliseLimits::default()),
            Err(TriageError::EmptyText)
        ));
        assert!(matches!(
            normalise("", &NormaliseLimits::default()),
            Err(TriageError::EmptyText)
        ));
    }

    #[test]
    fn text_over_the_cap_is_an_error_that_names_the_cap() {
        let limits = NormaliseLimits { max_chars: 10 };
        let err = normalise("一二三四五六七八九十一", &limits).unwrap_err();
        assert!(matches!(
            err,
            TriageError::TextTooLong { chars: 11, max: 10 }
        ));
        assert!(err.to_string().contains("10"));
        assert!(normalise("一二三四五六七八九十", &limits).is_ok());
    }
}
