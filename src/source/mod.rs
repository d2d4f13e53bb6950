//! Input sources: files and stdin ([`file`]), Kafka ([`kafka`]), and the
//! check that a Kafka partition resumes where it was assigned ([`resume_check`]).

pub mod file;
pub mod kafka;
pub mod resume_check;
