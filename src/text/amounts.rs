//! Money amounts written the many ways customers write them: `5万`, `¥3,200`,
//! `3200元`, `1.2w`, `八百块`, `十二万八千`, `两万三`.
//!
//! Only numbers that read as money are taken (a currency sign before, or a
//! money unit or 万/千 multiplier after), so dates, counts, hotline numbers
//! and percentages are left alone. Amounts feed severity (the taxonomy's money
//! thresholds), the reply's restatement and a model feature.

use std::sync::LazyLock;

use regex::Regex;

static ARABIC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        (?P<pre>[¥￥]|RMB|rmb|人民币)?\s*
        (?P<num>\d{1,3}(?:,\d{3})+|\d+)(?P<frac>\.\d+)?\s*
        (?P<mult>百万|千万|万|亿|千|[wWkK](?:[^A-Za-z]|$))?
        (?P<cur>元|块|圆|美元|美金|港币|港元|欧元|日元|英镑)?",
    )
    .unwrap()
});

static CHINESE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?P<num>[一二两三四五六七八九十][零〇一二两三四五六七八九十百千万亿]*)(?P<cur>元|块|圆|美元|美金|港币|港元)?")
        .unwrap()
});

/// All money amounts in `text`, in order of appearance, without repeats.
pub fn extract_amounts(text: &str) -> Vec<f64> {
    let mut found: Vec<(usize, f64)> = Vec::new();
    for c in ARABIC.captures_iter(text) {
        let has_pre = c.name("pre").is_some();
        let mult = c.name("mult").map(|m| m.as_str());
        let has_cur = c.name("cur").is_some();
        if !(has_pre || mult.is_some() || has_cur) {
            continue;
        }
        let digits: String = c["num"].chars().filter(|ch| *ch != ',').collect();
        let frac = c.name("frac").map_or("", |m| m.as_str());
        let Ok(base) = format!("{digits}{frac}").parse::<f64>() else {
            continue;
        };
        let factor = match mult.map(|m| m.chars().next().unwrap_or(' ')) {
            Some('百') => 1_000_000.0,
            Some('千') if mult.is_some_and(|m| m.starts_with("千万")) => 10_000_000.0,
            Some('万') | Some('w') | Some('W') => 10_000.0,
            Some('亿') => 100_000_000.0,
            Some('千') | Some('k') | Some('K') => 1_000.0,
            _ => 1.0,
        };
        found.push((c.get(0).unwrap().start(), base * factor));
    }
    for c in CHINESE.captures_iter(text) {
        let num = &c["num"];
        let has_cur = c.name("cur").is_some();
        let large = num.contains(['万', '亿', '千']);
        if !(has_cur || large) {
            continue;
        }
        if let Some(v) = parse_chinese_number(num) {
            found.push((c.get(0).unwrap().start(), v));
        }
    }
    found.sort_by_key(|(pos, _)| *pos);
    let mut out: Vec<f64> = Vec::with_capacity(found.len());
    for (_, v) in found {
        if v > 0.0 && !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

fn digit_value(ch: char) -> Option<f64> {
    Some(match ch {
        '零' | '〇' => 0.0,
        '一' => 1.0,
        '二' | '两' => 2.0,
        '三' => 3.0,
        '四' => 4.0,
        '五' => 5.0,
        '六' => 6.0,
        '七' => 7.0,
        '八' => 8.0,
        '九' => 9.0,
        _ => return None,
    })
}

/// Parse a Chinese numeral such as 十二万八千 (128000) or the colloquial
/// 两万三 (23000), where a trailing digit takes the unit below the last one.
pub fn parse_chinese_number(s: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut section = 0.0;
    let mut number = 0.0;
    let mut last_unit = 0.0;
    let mut trailing_digit = false;
    for ch in s.chars() {
        if let Some(d) = digit_value(ch) {
            number = d;
            trailing_digit = true;
            continue;
        }
        let unit = match ch {
            '十' => 10.0,
            '百' => 100.0,
            '千' => 1000.0,
            '万' => 10_000.0,
            '亿' => 100_000_000.0,
            _ => return None,
        };
        trailing_digit = false;
        if unit == 100_000_000.0 {
            total = (total + section + number) * unit;
            section = 0.0;
        } else if unit == 10_000.0 {
            total += (section + number) * unit;
            section = 0.0;
        } else {
            let n = if number == 0.0 && unit == 10.0 {
                1.0
            } else {
                number
            };
            section += n * unit;
        }
        number = 0.0;
        last_unit = unit;
    }
    if trailing_digit && number > 0.0 && last_unit >= 100.0 {
        // 两万三 = 23000, 一千二 = 1200, 三百五 = 350
        section += number * last_unit / 10.0;
    } else {
        section += number;
    }
    let value = total + section;
    (value > 0.0).then_some(value)
}

/// Coarse bucket of the largest amount, used as a model feature. The edges
/// follow the taxonomy's severity thresholds (about ¥200, ¥10,000, ¥500,000).
pub fn amount_bucket(amounts: &[f64]) -> &'static str {
    let max = amounts.iter().copied().fold(0.0, f64::max);
    match max {
        m if m <= 0.0 => "none",
        m if m < 200.0 => "lt200",
        m if m < 10_000.0 => "lt10k",
        m if m < 100_000.0 => "lt100k",
        m if m < 500_000.0 => "lt500k",
        _ => "ge500k",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_common_written_forms() {
        assert_eq!(extract_amounts("被骗了5万"), vec![50_000.0]);
        assert_eq!(extract_amounts("扣了¥3,200"), vec![3_200.0]);
        assert_eq!(extract_amounts("共计十二万八千"), vec![128_000.0]);
        assert_eq!(extract_amounts("借了1.2w"), vec![12_000.0]);
        assert_eq!(extract_amounts("本金2.8万元"), vec![28_000.0]);
        assert_eq!(extract_amounts("八百块钱"), vec![800.0]);
        assert_eq!(extract_amounts("大概两万三"), vec![23_000.0]);
        assert_eq!(extract_amounts("一千二百元"), vec![1_200.0]);
        assert_eq!(parse_chinese_number("一亿两千万"), Some(120_000_000.0));
        assert_eq!(parse_chinese_number("二十万"), Some(200_000.0));
        assert_eq!(
            extract_amounts("手续费135元，年费300元"),
            vec![135.0, 300.0]
        );
        assert_eq!(extract_amounts("RMB 500"), vec![500.0]);
    }

    #[test]
    fn ignores_dates_counts_hotlines_and_percentages() {
        assert!(extract_amounts("2024年3月12日打了12378，年化5.2%，3次，12名客户").is_empty());
        assert!(extract_amounts("千万别买这个产品").is_empty());
    }

    #[test]
    fn buckets_follow_severity_thresholds() {
        assert_eq!(amount_bucket(&[]), "none");
        assert_eq!(amount_bucket(&[20.0]), "lt200");
        assert_eq!(amount_bucket(&[3_200.0, 50_000.0]), "lt100k");
        assert_eq!(amount_bucket(&[600_000.0]), "ge500k");
    }
}
