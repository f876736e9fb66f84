//! The Redis store's operator controls: flags, runtime config, notifications, test results.

use std::time::Duration;

use ::redis::AsyncCommands;
use async_trait::async_trait;
use tokio::sync::broadcast;

use super::{RedisStore, decode_flags, scripts};
use crate::model::{Flag, FlagState, TestDelivery};
use crate::store::{ControlStore, StoreError, StoreResult, Update, encode_json};

#[async_trait]
impl ControlStore for RedisStore {
    async fn set_flag(&self, flag: &Flag, state: Option<&FlagState>) -> StoreResult<()> {
        let name = flag.name();
        let mut conn = self.conn();
        match state {
            Some(value) => {
                let json = encode_json("flag", value)?;
                let _: i64 = conn
                    .hset(self.inner.keys.flags(), &name, json)
                    .await
                    .map_err(StoreError::redis("set flag"))?;
            }
            None => {
                let _: i64 = conn
                    .hdel(self.inner.keys.flags(), &name)
                    .await
                    .map_err(StoreError::redis("clear flag"))?;
            }
        }
        self.publish(&Update::Flag(name)).await
    }

    async fn clear_flag_if(&self, flag: &Flag, expected: &FlagState) -> StoreResult<bool> {
        let name = flag.name();
        let json = encode_json("flag", expected)?;
        let mut conn = self.conn();
        let cleared: i64 = scripts()
            .flag_cad
            .key(self.inner.keys.flags())
            .arg(&name)
            .arg(json)
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::redis("clear flag"))?;
        if cleared == 1 {
            self.publish(&Update::Flag(name)).await?;
        }
        Ok(cleared == 1)
    }

    async fn flags(&self) -> StoreResult<Vec<(String, FlagState)>> {
        let mut conn = self.conn();
        let raw: Vec<(String, String)> = conn
            .hgetall(self.inner.keys.flags())
            .await
            .map_err(StoreError::redis("flags"))?;
        Ok(decode_flags(raw))
    }

    async fn config_set(&self, key: &str, value: Option<&str>) -> StoreResult<()> {
        let mut conn = self.conn();
        match value {
            Some(v) => {
                let _: i64 = conn
                    .hset(self.inner.keys.config(), key, v)
                    .await
                    .map_err(StoreError::redis("config set"))?;
            }
            None => {
                let _: i64 = conn
                    .hdel(self.inner.keys.config(), key)
                    .await
                    .map_err(StoreError::redis("config delete"))?;
            }
        }
        self.publish(&Update::Config(key.to_owned())).await
    }

    async fn test_result_put(&self, id: &str, result: &TestDelivery) -> StoreResult<()> {
        let json = serde_json::to_string(result).map_err(|e| StoreError::Protocol {
            op: "test result",
            detail: e.to_string(),
        })?;
        let mut conn = self.conn();
        conn.pset_ex::<_, _, ()>(
            self.inner.keys.test_result(id),
            json,
            crate::store::TEST_RESULT_TTL_MS.unsigned_abs(),
        )
        .await
        .map_err(StoreError::redis("test result put"))
    }

    async fn test_result_get(&self, id: &str) -> StoreResult<Option<TestDelivery>> {
        let mut conn = self.conn();
        let raw: Option<String> = conn
            .get(self.inner.keys.test_result(id))
            .await
            .map_err(StoreError::redis("test result get"))?;
        raw.map(|raw| {
            serde_json::from_str(&raw).map_err(|e| StoreError::Protocol {
                op: "test result",
                detail: e.to_string(),
            })
        })
        .transpose()
    }

    async fn config_get(&self, key: &str) -> StoreResult<Option<String>> {
        let mut conn = self.conn();
        conn.hget(self.inner.keys.config(), key)
            .await
            .map_err(StoreError::redis("config get"))
    }

    async fn config_all(&self) -> StoreResult<Vec<(String, String)>> {
        let mut conn = self.conn();
        let mut all: Vec<(String, String)> = conn
            .hgetall(self.inner.keys.config())
            .await
            .map_err(StoreError::redis("config all"))?;
        all.sort();
        Ok(all)
    }

    async fn subscribe(&self) -> StoreResult<broadcast::Receiver<Update>> {
        let receiver = self.updates_sender().subscribe();
        // Changes are only seen once our own listener is subscribed: wait for it.
        let wait = Duration::from_secs(2);
        let mut ready = self.inner.listening.subscribe();
        match tokio::time::timeout(wait, ready.wait_for(|listening| *listening)).await {
            Ok(Ok(_)) => Ok(receiver),
            _ => Err(StoreError::Timeout {
                op: "subscribe",
                timeout: wait,
            }),
        }
    }
}
