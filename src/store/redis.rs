//! Redis store (placeholder while the backend is written).
#[derive(Debug)]
pub struct RedisStore;
#[derive(Debug)]
pub struct RedisStoreOptions;
