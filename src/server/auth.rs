//! API keys: `Authorization: Bearer KEY` or `X-API-Key: KEY`. Keys come from
//! `[server.api_keys]` (name = key) and `TRIAGE_API_KEYS` ("name:key,…"); the
//! key's name is the actor recorded in case audit trails. Keys are never logged.

use std::collections::HashMap;

use axum::http::{HeaderMap, StatusCode};

use crate::server::errors::ApiError;

/// Who made a request (the API key's name, or `anonymous` when keys are off).
#[derive(Debug, Clone)]
pub struct Actor(pub String);

pub struct ApiKeys {
    by_key: HashMap<String, String>,
}

impl ApiKeys {
    pub fn new(
        configured: &std::collections::BTreeMap<String, String>,
        env: Option<&str>,
    ) -> Result<Self, String> {
        let mut by_key = HashMap::new();
        for (name, key) in configured {
            by_key.insert(key.clone(), name.clone());
        }
        for entry in env
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (name, key) = entry
                .split_once(':')
                .ok_or("TRIAGE_API_KEYS entries must be name:key")?;
            if key.len() < 16 {
                return Err(format!("API key `{name}` is shorter than 16 characters"));
            }
            by_key.insert(key.to_owned(), name.to_owned());
        }
        Ok(Self { by_key })
    }

    pub fn enabled(&self) -> bool {
        !self.by_key.is_empty()
    }

    /// The actor for a request, or 401.
    pub fn check(&self, headers: &HeaderMap) -> Result<Actor, ApiError> {
        if !self.enabled() {
            return Ok(Actor("anonymous".into()));
        }
        let presented = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .or_else(|| {
                headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
            });
        match presented {
            None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "this endpoint needs an API key: send `Authorization: Bearer KEY` or `X-API-Key: KEY`")),
            Some(k) => self
                .by_key
                .iter()
                .find(|(key, _)| constant_time_eq(key.as_bytes(), k.trim().as_bytes()))
                .map(|(_, name)| Actor(name.clone()))
                .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "the API key is not valid")),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_config_and_environment() {
        let cfg = std::collections::BTreeMap::from([(
            "ops".to_string(),
            "k-ops-0123456789abcdef".to_string(),
        )]);
        let keys = ApiKeys::new(&cfg, Some("bot:k-bot-0123456789abcdef")).unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(keys.check(&h).unwrap_err().status, StatusCode::UNAUTHORIZED);
        h.insert(
            "authorization",
            "Bearer k-bot-0123456789abcdef".parse().unwrap(),
        );
        assert_eq!(keys.check(&h).unwrap().0, "bot");
        h.insert("x-api-key", "wrong".parse().unwrap());
        assert!(keys.check(&h).is_err());
        assert!(ApiKeys::new(&Default::default(), Some("x:short")).is_err());
        assert_eq!(
            ApiKeys::new(&Default::default(), None)
                .unwrap()
                .check(&HeaderMap::new())
                .unwrap()
                .0,
            "anonymous"
        );
    }
}
