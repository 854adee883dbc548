//! Cooldowns and usage shared between gateway instances through Redis. Nothing on the
//! request path waits for Redis: writes are spawned on the gateway's home runtime, and a
//! background task reads every deployment's shared state four times a second into the
//! deployments' atomics. When Redis is away, each instance routes on what it saw itself.

use super::health::{Health, now_ms};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How often the shared state is read.
pub const SYNC_EVERY: Duration = Duration::from_millis(250);
const KEY_PREFIX: &str = "agentbridge:router:";

/// The router's Redis connection, once made.
pub struct Shared {
    conn: OnceLock<ConnectionManager>,
    home: tokio::runtime::Handle,
    healthy: AtomicBool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("connected", &self.conn.get().is_some())
            .field("healthy", &self.healthy())
            .finish()
    }
}

impl Shared {
    /// A handle whose connection `run` will make, on the runtime `home` (the main one).
    pub fn new(home: tokio::runtime::Handle) -> Arc<Self> {
        Arc::new(Self {
            conn: OnceLock::new(),
            home,
            healthy: AtomicBool::new(false),
        })
    }

    /// Whether the last Redis operation worked.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Relaxed)
    }

    fn ok<T>(&self, r: &redis::RedisResult<T>) {
        let was = self.healthy.swap(r.is_ok(), Relaxed);
        match r {
            Err(e) if was => {
                tracing::warn!(error = %e, "router: Redis unavailable; routing on this instance's own counts")
            }
            Ok(_) if !was => tracing::info!("router: Redis reachable; cooldowns and usage shared"),
            _ => {}
        }
    }

    /// Tells every instance that deployment `id` cools down until `until_ms`.
    pub fn cooldown(self: &Arc<Self>, id: &str, until_ms: u64) {
        let Some(mut c) = self.conn.get().cloned() else {
            return;
        };
        let (me, key, ttl) = (
            Arc::clone(self),
            format!("{KEY_PREFIX}{id}:cooldown"),
            until_ms.saturating_sub(now_ms()).max(1),
        );
        self.home.spawn(async move {
            let r: redis::RedisResult<()> = redis::cmd("SET")
                .arg(&key)
                .arg(until_ms)
                .arg("PX")
                .arg(ttl)
                .query_async(&mut c)
                .await;
            me.ok(&r);
        });
    }

    /// Counts a request (and `tokens`) for deployment `id` this minute, for every instance.
    pub fn count(self: &Arc<Self>, id: &str, health: &Arc<Health>, requests: u64, tokens: u64) {
        let Some(mut c) = self.conn.get().cloned() else {
            return;
        };
        let minute = now_ms() / 60_000;
        let (me, h) = (Arc::clone(self), Arc::clone(health));
        let (rk, tk) = usage_keys(id, minute);
        self.home.spawn(async move {
            let r: redis::RedisResult<(u64, (), u64, ())> = redis::pipe()
                .cmd("INCRBY")
                .arg(&rk)
                .arg(requests)
                .cmd("EXPIRE")
                .arg(&rk)
                .arg(120)
                .cmd("INCRBY")
                .arg(&tk)
                .arg(tokens)
                .cmd("EXPIRE")
                .arg(&tk)
                .arg(120)
                .query_async(&mut c)
                .await;
            me.ok(&r);
            if let Ok((r, (), t, ())) = r {
                h.set_shared(minute, r, t);
            }
        });
    }

    /// Connects (retrying), then reads every deployment's cooldown and usage every
    /// [`SYNC_EVERY`]. Runs until the gateway stops.
    pub async fn run(self: Arc<Self>, url: String, deployments: Vec<(Arc<str>, Arc<Health>)>) {
        let client = match redis::Client::open(url.as_str()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "router: bad Redis URL; cooldowns and usage stay per instance");
                return;
            }
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(1))
            .set_response_timeout(Duration::from_millis(500))
            .set_number_of_retries(1)
            .set_max_delay(1000);
        let mut conn = loop {
            match ConnectionManager::new_with_config(client.clone(), config.clone()).await {
                Ok(c) => break c,
                Err(e) => {
                    self.ok::<()>(&Err(e));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let _ = self.conn.set(conn.clone());
        let mut tick = tokio::time::interval(SYNC_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let minute = now_ms() / 60_000;
            let mut keys = Vec::with_capacity(deployments.len() * 3);
            for (id, _) in &deployments {
                let (r, t) = usage_keys(id, minute);
                keys.extend([format!("{KEY_PREFIX}{id}:cooldown"), r, t]);
            }
            let r: redis::RedisResult<Vec<Option<u64>>> =
                redis::cmd("MGET").arg(&keys).query_async(&mut conn).await;
            self.ok(&r);
            let Ok(values) = r else { continue };
            for ((_, h), v) in deployments.iter().zip(values.chunks(3)) {
                if let [cool, req, tok] = v {
                    if let Some(until) = cool {
                        h.cool_until(*until);
                    }
                    h.set_shared(minute, req.unwrap_or(0), tok.unwrap_or(0));
                }
            }
        }
    }
}

fn usage_keys(id: &str, minute: u64) -> (String, String) {
    (
        format!("{KEY_PREFIX}{id}:rpm:{minute}"),
        format!("{KEY_PREFIX}{id}:tpm:{minute}"),
    )
}
