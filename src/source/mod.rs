//! Input sources: files and stdin ([`file`]), Kafka ([`kafka`], with
//! [`message_queue`] reading fetched messages in batches), and the
//! check that a Kafka partition resumes where it was assigned ([`resume_check`]).

pub mod file;
pub mod kafka;
pub mod message_queue;
pub mod resume_check;
