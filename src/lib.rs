//! Complaint triage for Chinese financial institutions: raw complaint text in,
//! labelled, routed and answered complaint out.
//!
//! The flow is one direction: normalise → mask → segment → encode → infer →
//! signals → route → draft reply, assembled by [`Engine`]. Transports (CLI,
//! batch, HTTP) are thin layers over [`Engine::triage`].

pub mod batch;
pub mod config;
pub mod engine;
pub mod error;
pub mod eval;
pub mod model;
pub mod queue;
pub mod reply;
pub mod routing;
pub mod server;
pub mod signals;
pub mod text;
pub mod train;

pub use engine::{Complaint, Engine, EngineOptions, Triage};

pub use error::{LoadError, TriageError};
