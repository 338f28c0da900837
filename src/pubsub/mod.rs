//! Publish/subscribe: clients subscribe to topics, a message published to a topic goes to
//! every subscriber.
//!
//! - [`glob`]: patterns as Redis matches them, with a cost bound.

pub mod glob;

pub use glob::{Glob, glob_match};
