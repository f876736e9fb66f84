//! Where the Redis store's commands go: one server, or a Redis Cluster named by its seed nodes
//! (`config::cluster_seeds`). Ward's keys carry a hash tag
//! per partition (`ward:{p3}:…`) or the global tag (`ward:{g}:…`), so each script and each
//! transaction stays in one slot; a plain pipeline that spans slots is split here by hash tag
//! and its parts are sent to their nodes at once, so a control read is still one round trip per
//! node, whatever the queue and DLQ sizes.

use std::collections::HashMap;
use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager};
use ::redis::cluster::ClusterClient;
use ::redis::cluster_async::ClusterConnection;
use ::redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use ::redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use crate::store::{StoreError, StoreResult};

/// A connection to one server or to a cluster; cheap to clone (both multiplex).
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// Connect to a cluster through its seeds, within the connect budget.
    pub(crate) async fn cluster(
        seeds: &[String],
        response_timeout: Duration,
        connect_timeout: Duration,
    ) -> StoreResult<Self> {
        let client = ClusterClient::builder(seeds.iter().map(String::as_str))
            .response_timeout(response_timeout)
            .connection_timeout(connect_timeout)
            // A failover takes the cluster's node timeout plus an election: about 2-3 s with
            // the test clusters, 15-20 s with Redis's defaults. Retries cover the former; the
            // workers' own retries the latter.
            .retries(8)
            .min_retry_wait(50)
            .max_retry_wait(1_000)
            .build()
            .map_err(StoreError::redis("open"))?;
        let budget = connect_timeout * 4;
        let conn = tokio::time::timeout(budget, client.get_async_connection())
            .await
            .map_err(|_| StoreError::Timeout {
                op: "connect",
                timeout: budget,
            })?
            .map_err(StoreError::redis("connect"))?;
        Ok(Self::Cluster(conn))
    }

    /// Run `cmd` on every primary (cluster) or the one server, each reply with its node's name.
    pub(crate) async fn on_every_primary(&mut self, cmd: Cmd) -> RedisResult<Vec<(String, Value)>> {
        match self {
            Self::Single(conn) => Ok(vec![(String::new(), cmd.query_async(conn).await?)]),
            Self::Cluster(conn) => {
                let routing = RoutingInfo::MultiNode((
                    ::redis::cluster_routing::MultipleNodeRoutingInfo::AllMasters,
                    None,
                ));
                match conn.route_command(cmd, routing).await? {
                    Value::Map(pairs) => Ok(pairs
                        .into_iter()
                        .map(|(node, value)| (lossy(&node), value))
                        .collect()),
                    other => Ok(vec![(String::new(), other)]),
                }
            }
        }
    }

    /// Wait until `replicas` replicas of the node holding `key` have every write sent so far on
    /// this connection, for at most `timeout`; answers how many did.
    pub(crate) async fn wait_replicated(
        &mut self,
        key: &str,
        replicas: u32,
        timeout: Duration,
    ) -> RedisResult<u32> {
        let mut wait = ::redis::cmd("WAIT");
        wait.arg(replicas).arg(timeout.as_millis() as u64);
        let reply = self.on_primary_of(key, wait).await?;
        Ok(::redis::from_redis_value(reply)?)
    }

    /// How many replicas the node holding `key` has connected now (ROLE); 0 if it is not a
    /// primary.
    pub(crate) async fn connected_replicas(&mut self, key: &str) -> RedisResult<u32> {
        let reply = self.on_primary_of(key, ::redis::cmd("ROLE")).await?;
        Ok(match reply {
            Value::Array(role) if role.first().map(lossy).as_deref() == Some("master") => {
                match role.get(2) {
                    Some(Value::Array(replicas)) => {
                        u32::try_from(replicas.len()).unwrap_or(u32::MAX)
                    }
                    _ => 0,
                }
            }
            _ => 0,
        })
    }

    /// Run `cmd` on the primary that holds `key` (the one server when not a cluster).
    async fn on_primary_of(&mut self, key: &str, cmd: Cmd) -> RedisResult<Value> {
        match self {
            Self::Single(conn) => cmd.query_async(conn).await,
            Self::Cluster(conn) => {
                let route = SingleNodeRoutingInfo::SpecificNode(Route::with_key(
                    key.as_bytes(),
                    SlotAddr::Master,
                ));
                conn.route_command(cmd, RoutingInfo::SingleNode(route))
                    .await
            }
        }
    }
}

fn lossy(value: &Value) -> String {
    match value {
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::SimpleString(text) => text.clone(),
        other => format!("{other:?}"),
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            // A transaction is one slot by construction; a plain pipeline may span several.
            Self::Cluster(conn) => {
                if pipeline.is_transaction() {
                    conn.req_packed_commands(pipeline, offset, count)
                } else {
                    Box::pin(split_by_slot(conn.clone(), pipeline, offset, count))
                }
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

/// Send the parts of a plain pipeline that live in different slots to their nodes at once and
/// put the replies back in the pipeline's order.
async fn split_by_slot(
    conn: ClusterConnection,
    pipeline: &Pipeline,
    offset: usize,
    count: usize,
) -> RedisResult<Vec<Value>> {
    let commands: Vec<&Cmd> = pipeline.cmd_iter().collect();
    let groups = group_by_hash_tag(&commands);
    if groups.len() <= 1 {
        let mut conn = conn;
        return conn.req_packed_commands(pipeline, offset, count).await;
    }
    let parts = groups.iter().map(|indices| {
        let mut part = Pipeline::with_capacity(indices.len());
        for &index in indices {
            part.add_command(commands[index].clone());
        }
        let mut conn = conn.clone();
        async move { conn.req_packed_commands(&part, 0, part.len()).await }
    });
    let replies = futures::future::try_join_all(parts).await?;
    let mut ordered: Vec<Option<Value>> = vec![None; commands.len()];
    for (indices, values) in groups.iter().zip(replies) {
        for (&index, value) in indices.iter().zip(values) {
            ordered[index] = Some(value);
        }
    }
    Ok(ordered
        .into_iter()
        .skip(offset)
        .take(count)
        .map(|value| value.unwrap_or(Value::Nil))
        .collect())
}

/// Indices of the commands per hash tag (or whole key), in first-seen order; a command without
/// a key rides with the one before it.
fn group_by_hash_tag(commands: &[&Cmd]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut by_tag: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut current: Option<usize> = None;
    for (index, cmd) in commands.iter().enumerate() {
        let group = match first_key(cmd) {
            Some(key) => {
                let tag = hash_tag(&key).to_vec();
                *by_tag.entry(tag).or_insert_with(|| {
                    groups.push(Vec::new());
                    groups.len() - 1
                })
            }
            None => current.unwrap_or_else(|| {
                groups.push(Vec::new());
                groups.len() - 1
            }),
        };
        groups[group].push(index);
        current = Some(group);
    }
    groups
}

/// The first key a command names, for the commands Ward pipelines.
fn first_key(cmd: &Cmd) -> Option<Vec<u8>> {
    let args: Vec<&[u8]> = cmd
        .args_iter()
        .map(|arg| match arg {
            ::redis::Arg::Simple(bytes) => bytes,
            _ => &b""[..],
        })
        .take(4)
        .collect();
    let name = args.first()?.to_ascii_uppercase();
    match name.as_slice() {
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" => {
            let keys: usize = std::str::from_utf8(args.get(2)?).ok()?.parse().ok()?;
            (keys > 0).then(|| args.get(3).map(|key| key.to_vec()))?
        }
        b"PING" | b"TIME" | b"INFO" | b"PUBLISH" | b"SCRIPT" | b"WAIT" | b"CONFIG" | b"CLUSTER"
        | b"ECHO" | b"DBSIZE" => None,
        _ => args.get(1).map(|key| key.to_vec()),
    }
}

/// The part of a key Redis Cluster hashes: the first non-empty `{…}`, else the whole key.
fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{')
        && let Some(len) = key[open + 1..].iter().position(|&b| b == b'}')
        && len > 0
    {
        return &key[open + 1..open + 1 + len];
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_tags_follow_redis_rules() {
        assert_eq!(hash_tag(b"ward:{p3}:q"), b"p3");
        assert_eq!(hash_tag(b"ward:{}:q"), b"ward:{}:q");
        assert_eq!(hash_tag(b"plain"), b"plain");
        assert_eq!(hash_tag(b"a{b}{c}"), b"b");
    }

    #[test]
    fn pipelines_split_by_tag_and_keyless_commands_ride_along() {
        let mut eval = ::redis::cmd("EVAL");
        eval.arg("return 1")
            .arg(2)
            .arg("ward:{p1}:q")
            .arg("ward:{p1}:env");
        let mut no_keys = ::redis::cmd("EVAL");
        no_keys.arg("return 1").arg(0);
        let mut llen0 = ::redis::cmd("LLEN");
        llen0.arg("ward:{p0}:q");
        let mut llen1 = ::redis::cmd("LLEN");
        llen1.arg("ward:{p1}:q");
        let mut ping = ::redis::cmd("PING");
        ping.arg("x");
        let commands = [&llen0, &eval, &ping, &llen1, &no_keys];
        assert_eq!(
            group_by_hash_tag(&commands),
            vec![vec![0], vec![1, 2, 3, 4]]
        );
    }
}
