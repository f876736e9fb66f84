//! In-memory store (placeholder while the backend is written).
#[derive(Debug)]
pub struct MemoryStore;
