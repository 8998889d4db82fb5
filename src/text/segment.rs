//! Word segmentation with jieba-rs plus a finance user dictionary, so terms
//! such as 信用卡, 大额存单 or 12378 stay whole instead of being split into
//! characters the classifier cannot tell apart.
//!
//! The dictionary is loaded once per engine; segmentation itself allocates
//! only the output vector.

use std::io::BufReader;
use std::path::Path;

use jieba_rs::Jieba;

use crate::error::LoadError;

/// jieba-rs with the finance dictionary loaded.
pub struct Segmenter {
    jieba: Jieba,
    hmm: bool,
}

impl Segmenter {
    /// Load jieba's default dictionary and then the user dictionary at
    /// `user_dict` (jieba format: `word [freq] [tag]` per line).
    pub fn load(user_dict: Option<&Path>, hmm: bool) -> Result<Self, LoadError> {
        let mut jieba = Jieba::new();
        if let Some(path) = user_dict {
            let file = std::fs::File::open(path).map_err(|e| LoadError::io(path, e))?;
            jieba.load_dict(&mut BufReader::new(file)).map_err(|e| {
                LoadError::invalid(
                    path,
                    format!("not a jieba dictionary ({e}); expected `word [freq] [tag]` per line"),
                )
            })?;
        }
        Ok(Self { jieba, hmm })
    }

    /// Segment `text` into words (whitespace tokens dropped).
    pub fn cut<'a>(&self, text: &'a str) -> Vec<&'a str> {
        self.jieba
            .cut(text, self.hmm)
            .into_iter()
            .map(|t| t.word)
            .filter(|w| !w.trim().is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finance() -> Segmenter {
        let dict = concat!(env!("CARGO_MANIFEST_DIR"), "/config/finance_dict.txt");
        Segmenter::load(Some(Path::new(dict)), true).unwrap()
    }

    #[test]
    fn finance_terms_stay_whole() {
        let seg = finance();
        for (text, term) in [
            ("我的信用卡分期年费太贵", "信用卡"),
            ("信用卡分期年费太贵", "分期"),
            ("分期年费太贵", "年费"),
            ("影响我的征信记录", "征信"),
            ("催收一天打十几个电话", "催收"),
            ("买的理财净值跌了", "净值"),
            ("申请退保被拒", "退保"),
            ("卡被盗刷三笔", "盗刷"),
            ("大额存单提前支取", "大额存单"),
            ("我要打12378投诉", "12378"),
            ("账户被冻结了", "冻结"),
        ] {
            let words = seg.cut(text);
            assert!(words.contains(&term), "{term} not whole in {words:?}");
        }
    }

    #[test]
    fn whitespace_is_not_a_token() {
        let words = finance().cut("年费 太高");
        assert!(words.iter().all(|w| !w.trim().is_empty()));
    }
}
