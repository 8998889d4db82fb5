//! Text → token ids, driven by the model directory's `tokenizer.json`.
//!
//! The shipped model uses the `features` encoder: jieba words, character
//! n-grams over Chinese runs, and three context features (channel, amount
//! bucket, length bucket), looked up in the tokenizer's WordLevel vocabulary;
//! unknown features are dropped. A BERT-style model a bank brings uses the
//! `text` encoder: its own tokenizer encodes the normalised text. The trainer
//! calls the same [`FeatureExtractor`], so training and serving cannot drift.

use std::path::Path;

use rustc_hash::FxHashMap;
use tokenizers::Tokenizer;

use crate::error::LoadError;
use crate::model::manifest::{EncoderKind, Manifest};
use crate::text::amounts::amount_bucket;
use crate::text::segment::Segmenter;

/// What the encoder reads about one complaint.
#[derive(Debug, Clone, Copy)]
pub struct FeatureContext<'a> {
    /// Normalised and masked text.
    pub text: &'a str,
    pub channel: Option<&'a str>,
    pub amounts: &'a [f64],
}

/// Token ids for one text (the attention mask is implied by the length).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Encoded {
    pub ids: Vec<i64>,
    pub type_ids: Vec<i64>,
}

/// Longest character n-gram the features encoder supports.
pub const MAX_NGRAM: usize = 3;

/// One feature: a vocabulary string, or a character n-gram packed into an
/// integer key ([`ngram_key`]).
#[derive(Debug, Clone, Copy)]
pub enum Feature<'a> {
    Text(&'a str),
    Ngram(u64),
}

/// Pack up to [`MAX_NGRAM`] characters into one integer: each code point plus
/// one in a 21-bit slot, so the length is implied by the highest used slot.
pub fn ngram_key(chars: impl Iterator<Item = char>) -> u64 {
    chars.fold(0u64, |key, ch| (key << 21) | (ch as u64 + 1))
}

/// The vocabulary string of a packed n-gram, e.g. `c2:盗刷`.
pub fn ngram_string(key: u64, out: &mut String) {
    let n = (0..MAX_NGRAM).take_while(|i| key >> (21 * i) != 0).count();
    out.push('c');
    out.push(char::from(b'0' + n as u8));
    out.push(':');
    for i in (0..n).rev() {
        let code = ((key >> (21 * i)) & 0x1F_FFFF) as u32 - 1;
        out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
    }
}

/// Parse `cN:xyz` back into its packed key (None for other features).
fn parse_ngram(token: &str) -> Option<u64> {
    let rest = token.strip_prefix('c')?;
    let (n, chars) = rest.split_once(':')?;
    let n: usize = n.parse().ok()?;
    ((1..=MAX_NGRAM).contains(&n) && chars.chars().count() == n).then(|| ngram_key(chars.chars()))
}

/// Produces the feature strings of the `features` encoder.
pub struct FeatureExtractor {
    segmenter: Segmenter,
    char_ngrams: Vec<usize>,
    max_tokens: usize,
}

/// Characters that take part in n-grams: everything but whitespace, with
/// digits folded to `0` so amounts and dates share features.
fn ngram_char(ch: char) -> Option<char> {
    if ch.is_whitespace() {
        None
    } else if ch.is_ascii_digit() {
        Some('0')
    } else {
        Some(ch.to_ascii_lowercase())
    }
}

fn length_bucket(chars: usize) -> &'static str {
    match chars {
        0..15 => "xs",
        15..40 => "s",
        40..100 => "m",
        100..250 => "l",
        _ => "xl",
    }
}

impl FeatureExtractor {
    pub fn new(segmenter: Segmenter, char_ngrams: Vec<usize>, max_tokens: usize) -> Self {
        Self {
            segmenter,
            char_ngrams,
            max_tokens,
        }
    }

    pub fn segmenter(&self) -> &Segmenter {
        &self.segmenter
    }

    /// Call `f` with each feature, at most `max_tokens` of them, in a fixed
    /// order: context, words, then character n-grams. N-grams come as packed
    /// keys ([`ngram_key`]) so the hot path needs no string building.
    pub fn visit(&self, ctx: &FeatureContext, mut f: impl FnMut(Feature)) {
        let mut buf = String::with_capacity(32);
        let mut emitted = 0usize;
        let max = self.max_tokens;
        let mut emit = |feature: Feature| {
            if emitted < max {
                f(feature);
                emitted += 1;
            }
        };
        buf.push_str("ch:");
        buf.push_str(ctx.channel.unwrap_or("unknown"));
        emit(Feature::Text(&buf));
        buf.clear();
        buf.push_str("amt:");
        buf.push_str(amount_bucket(ctx.amounts));
        emit(Feature::Text(&buf));
        let chars: Vec<Option<char>> = ctx.text.chars().map(ngram_char).collect();
        buf.clear();
        buf.push_str("len:");
        buf.push_str(length_bucket(chars.len()));
        emit(Feature::Text(&buf));
        for word in self.segmenter.cut(ctx.text) {
            buf.clear();
            buf.push_str("w:");
            for ch in word.chars() {
                buf.push(ch.to_ascii_lowercase());
            }
            emit(Feature::Text(&buf));
        }
        for &n in &self.char_ngrams {
            if n == 0 || n > MAX_NGRAM {
                continue;
            }
            let mut run_start = 0;
            for i in 0..=chars.len() {
                if i < chars.len() && chars[i].is_some() {
                    continue;
                }
                // chars[run_start..i] is a run without whitespace
                if i >= run_start + n {
                    for s in run_start..=i - n {
                        emit(Feature::Ngram(ngram_key(
                            chars[s..s + n].iter().flatten().copied(),
                        )));
                    }
                }
                run_start = i + 1;
            }
        }
    }

    /// Call `f` with each feature as its vocabulary string (`w:…`, `c2:…`).
    pub fn for_each_feature(&self, ctx: &FeatureContext, mut f: impl FnMut(&str)) {
        let mut buf = String::with_capacity(16);
        self.visit(ctx, |feature| match feature {
            Feature::Text(t) => f(t),
            Feature::Ngram(key) => {
                buf.clear();
                ngram_string(key, &mut buf);
                f(&buf)
            }
        });
    }

    /// All feature strings of one text (for training and inspection).
    pub fn features(&self, ctx: &FeatureContext) -> Vec<String> {
        let mut out = Vec::new();
        self.for_each_feature(ctx, |s| out.push(s.to_owned()));
        out
    }
}

/// Turns complaints into model inputs as the manifest says.
pub struct Encoder {
    kind: EncoderKind,
    tokenizer: Tokenizer,
    /// The tokenizer's vocabulary (with added tokens) re-keyed for the
    /// features encoder's hot path: character n-grams by packed key, other
    /// features by string. Same ids as `tokenizer.token_to_id`.
    vocab: FxHashMap<String, u32>,
    ngrams: FxHashMap<u64, u32>,
    features: Option<FeatureExtractor>,
    max_tokens: usize,
    dedupe: bool,
}

impl Encoder {
    pub fn load(dir: &Path, manifest: &Manifest) -> Result<Self, LoadError> {
        let path = dir.join(&manifest.tokenizer);
        if !path.exists() {
            return Err(LoadError::io(
                &path,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        let tokenizer =
            Tokenizer::from_file(&path).map_err(|e| LoadError::invalid(&path, e.to_string()))?;
        let spec = &manifest.encoder;
        let features = match spec.kind {
            EncoderKind::Features => {
                let dict = spec.user_dict.as_ref().map(|d| dir.join(d));
                let segmenter = Segmenter::load(dict.as_deref(), spec.hmm)?;
                Some(FeatureExtractor::new(
                    segmenter,
                    spec.char_ngrams.clone(),
                    spec.max_tokens,
                ))
            }
            EncoderKind::Text => None,
        };
        let mut vocab = FxHashMap::default();
        let mut ngrams = FxHashMap::default();
        if spec.kind == EncoderKind::Features {
            for (token, id) in tokenizer.get_vocab(true) {
                match parse_ngram(&token) {
                    Some(key) => {
                        ngrams.insert(key, id);
                    }
                    None => {
                        vocab.insert(token, id);
                    }
                }
            }
        }
        Ok(Self {
            kind: spec.kind,
            tokenizer,
            vocab,
            ngrams,
            features,
            max_tokens: spec.max_tokens,
            dedupe: spec.dedupe,
        })
    }

    pub fn feature_extractor(&self) -> Option<&FeatureExtractor> {
        self.features.as_ref()
    }

    pub fn encode(&self, ctx: &FeatureContext) -> Result<Encoded, String> {
        match (self.kind, &self.features) {
            (EncoderKind::Features, Some(fx)) => {
                let mut ids = Vec::with_capacity(128);
                fx.visit(ctx, |feature| {
                    let id = match feature {
                        Feature::Text(t) => self.vocab.get(t),
                        Feature::Ngram(key) => self.ngrams.get(&key),
                    };
                    if let Some(&id) = id {
                        ids.push(id as i64);
                    }
                });
                if self.dedupe {
                    ids.sort_unstable();
                    ids.dedup();
                }
                let type_ids = vec![0; ids.len()];
                Ok(Encoded { ids, type_ids })
            }
            _ => {
                let enc = self
                    .tokenizer
                    .encode(ctx.text, true)
                    .map_err(|e| format!("tokenizer failed: {e}"))?;
                let n = enc.get_ids().len().min(self.max_tokens);
                Ok(Encoded {
                    ids: enc.get_ids()[..n].iter().map(|&i| i as i64).collect(),
                    type_ids: enc.get_type_ids()[..n].iter().map(|&i| i as i64).collect(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extractor() -> FeatureExtractor {
        let dict = concat!(env!("CARGO_MANIFEST_DIR"), "/config/finance_dict.txt");
        FeatureExtractor::new(
            Segmenter::load(Some(Path::new(dict)), true).unwrap(),
            vec![2, 3],
            1024,
        )
    }

    #[test]
    fn features_cover_context_words_and_ngrams() {
        let fx = extractor();
        let f = fx.features(&FeatureContext {
            text: "信用卡被盗刷5万 ATM",
            channel: Some("phone"),
            amounts: &[50_000.0],
        });
        for expected in [
            "ch:phone",
            "amt:lt100k",
            "len:xs",
            "w:信用卡",
            "w:盗刷",
            "w:atm",
            "c2:用卡",
            "c3:信用卡",
        ] {
            assert!(
                f.iter().any(|x| x == expected),
                "{expected} missing from {f:?}"
            );
        }
        // n-grams never span whitespace; digits are folded to 0
        assert!(f.iter().any(|x| x == "c2:刷0"));
        assert!(!f
            .iter()
            .any(|x| x.starts_with("c2:") && (x.contains('5') || x.contains(' '))));
    }

    #[test]
    fn fast_vocabulary_agrees_with_the_tokenizer() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models"));
        let manifest = Manifest::load(dir).unwrap();
        let enc = Encoder::load(dir, &manifest).unwrap();
        for token in ["w:信用卡", "ch:phone", "[UNK]", "w:no-such-feature-xyz"] {
            assert_eq!(
                enc.vocab.get(token).copied(),
                enc.tokenizer.token_to_id(token),
                "{token}"
            );
        }
        for token in ["c1:卡", "c2:盗刷", "c3:信用卡", "c2:!!", "c3:00元"] {
            assert_eq!(
                enc.ngrams.get(&parse_ngram(token).unwrap()).copied(),
                enc.tokenizer.token_to_id(token),
                "{token}"
            );
        }
        // the fast path gives exactly the ids of looking every feature string up in tokenizer.json
        let fx = enc.feature_extractor().unwrap();
        for text in [
            "我的信用卡被盗刷了3笔共计2.3万元!! 请马上冻结",
            "ATM吞卡了, 打12378投诉",
            "谢谢",
        ] {
            let ctx = FeatureContext {
                text,
                channel: Some("phone"),
                amounts: &[23_000.0],
            };
            let mut slow: Vec<i64> = Vec::new();
            fx.for_each_feature(&ctx, |f| {
                slow.extend(enc.tokenizer.token_to_id(f).map(|i| i as i64))
            });
            slow.sort_unstable();
            slow.dedup();
            assert_eq!(enc.encode(&ctx).unwrap().ids, slow, "{text}");
        }
    }

    #[test]
    fn ngram_keys_round_trip() {
        for token in ["c1:卡", "c2:盗刷", "c3:信用卡", "c2:a0"] {
            let mut out = String::new();
            ngram_string(parse_ngram(token).unwrap(), &mut out);
            assert_eq!(out, token);
        }
        assert_eq!(parse_ngram("w:信用卡"), None);
        assert_eq!(parse_ngram("c2:太长了"), None);
    }

    #[test]
    fn features_are_capped() {
        let fx = FeatureExtractor::new(extractor().segmenter, vec![2], 10);
        let f = fx.features(&FeatureContext {
            text: &"年费太高".repeat(50),
            channel: None,
            amounts: &[],
        });
        assert_eq!(f.len(), 10);
    }
}
