//! The memory store's operator controls: flags, runtime config, notifications, test results.

use async_trait::async_trait;
use tokio::sync::broadcast;

use super::MemoryStore;
use crate::model::{Flag, FlagState, TestDelivery};
use crate::store::{ControlStore, Store, StoreResult, Update};

#[async_trait]
impl ControlStore for MemoryStore {
    async fn set_flag(&self, flag: &Flag, state: Option<&FlagState>) -> StoreResult<()> {
        let name = flag.name();
        {
            let mut guard = self.lock();
            match state {
                Some(value) => guard.flags.insert(name.clone(), value.clone()),
                None => guard.flags.remove(&name),
            };
        }
        self.announce(Update::Flag(name));
        Ok(())
    }

    async fn clear_flag_if(&self, flag: &Flag, expected: &FlagState) -> StoreResult<bool> {
        let name = flag.name();
        let cleared = {
            let mut guard = self.lock();
            let same = guard.flags.get(&name) == Some(expected);
            if same {
                guard.flags.remove(&name);
            }
            same
        };
        if cleared {
            self.announce(Update::Flag(name));
        }
        Ok(cleared)
    }

    async fn flags(&self) -> StoreResult<Vec<(String, FlagState)>> {
        let mut flags: Vec<_> = self
            .lock()
            .flags
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        flags.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(flags)
    }

    async fn config_set(&self, key: &str, value: Option<&str>) -> StoreResult<()> {
        {
            let mut guard = self.lock();
            match value {
                Some(v) => guard.config.insert(key.to_owned(), v.to_owned()),
                None => guard.config.remove(key),
            };
        }
        self.announce(Update::Config(key.to_owned()));
        Ok(())
    }

    async fn test_result_put(&self, id: &str, result: &TestDelivery) -> StoreResult<()> {
        let now = self.now_ms();
        let mut state = self.lock();
        state.test_results.retain(|_, (_, expires)| *expires > now);
        state.test_results.insert(
            id.to_owned(),
            (result.clone(), now + crate::store::TEST_RESULT_TTL_MS),
        );
        Ok(())
    }

    async fn test_result_get(&self, id: &str) -> StoreResult<Option<TestDelivery>> {
        let now = self.now_ms();
        Ok(self
            .lock()
            .test_results
            .get(id)
            .filter(|(_, expires)| *expires > now)
            .map(|(result, _)| result.clone()))
    }

    async fn config_get(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(self.lock().config.get(key).cloned())
    }

    async fn config_all(&self) -> StoreResult<Vec<(String, String)>> {
        let mut all: Vec<_> = self
            .lock()
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort();
        Ok(all)
    }

    async fn subscribe(&self) -> StoreResult<broadcast::Receiver<Update>> {
        Ok(self.updates.subscribe())
    }
}
