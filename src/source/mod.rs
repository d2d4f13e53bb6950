//! Input sources: files and stdin ([`file`]), Kafka ([`kafka`]).

pub mod file;
pub mod kafka;
