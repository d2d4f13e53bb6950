//! Input sources: files and stdin ([`file`]), Kafka ([`kafka`], with
//! [`message_queue`] reading fetched messages in batches), the check that a
//! Kafka partition resumes where it was assigned ([`resume_check`]), and the
//! offsets waiting for their alerts' delivery before a commit
//! ([`pending_commits`]).

pub mod file;
pub mod kafka;
pub mod message_queue;
pub mod pending_commits;
pub mod resume_check;
