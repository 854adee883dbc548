//! The router: which deployment of a model group answers a request, and what happens when
//! one fails. LiteLLM's `router_settings` names throughout (see `docs/routing.md`).
//!
//! - A request that continues a session ([`affinity::session_of`]) goes to the deployment
//!   holding it: rendezvous hashing over the group's configured deployments, the same on
//!   every instance. A fresh request goes where the [`Strategy`] says, with a session id made
//!   to hash there, so its next turns follow.
//! - A failure the agent cannot have acted on (`agentbridge::Error::is_retryable`: no
//!   connection, throttling, 5xx before the stream) is retried on another deployment of the
//!   group (`num_retries`, `retry_policy`), then on the `fallbacks` groups. Once a deployment
//!   answered, nothing is retried: the agent accepted the request.
//! - More than `allowed_fails` failures in a minute cool a deployment down for
//!   `cooldown_time`, shared through Redis when configured ([`shared`]).
//! - A group of one deployment without fallbacks is called directly: no hashing, no counters.

pub mod affinity;
pub mod health;
pub mod settings;
pub mod shared;
mod status;
pub mod strategy;

use crate::error::Result;
use agentbridge::canonical::{AgentRequest, Answer, Piece};
use agentbridge::{Client, Deployment};
use futures::StreamExt;
use health::{Health, now_ms};
use serde_json::Value;
use settings::{DeploymentInfo, RouterSettings};
use std::sync::Arc;
use strategy::{Candidate, Strategy};

/// Whether a failure counts against the deployment: the ones the agent cannot have acted on,
/// and timeouts.
fn counts(e: &agentbridge::Error) -> bool {
    e.is_retryable() || matches!(e, agentbridge::Error::Timeout(_))
}

/// One deployment of a group.
#[derive(Debug)]
pub struct Member {
    /// `model_info.id`, else `{model_name}/{index}` (sent as `x-agentbridge-deployment`).
    pub id: Arc<str>,
    /// The deployment.
    pub deployment: Arc<Deployment>,
    /// Its state on this instance.
    pub health: Arc<Health>,
    /// Its routing facts.
    pub info: DeploymentInfo,
}

/// The deployments served under one model name.
#[derive(Debug)]
pub struct Group {
    /// The model name.
    pub name: String,
    members: Vec<Member>,
    ring: affinity::Ring,
    /// One deployment, no fallbacks, no caps: called directly.
    direct: bool,
    /// Whether the client's headers are passed on to the agent
    /// (`forward_client_headers_to_llm_api`; see `routes::forwarded_headers`).
    pub forwards_client_headers: bool,
}

impl Group {
    /// The deployments, in config order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The request header carrying the end user's own token, if the deployments name one.
    pub fn user_token_header(&self) -> Option<&str> {
        self.members
            .iter()
            .find_map(|m| m.deployment.settings.user_token_header.as_deref())
    }
}

/// An answer and where it came from.
#[derive(Debug)]
pub struct Routed {
    /// The agent's answer.
    pub answer: Answer,
    /// The id of the deployment that answered.
    pub deployment: Arc<str>,
    /// The deployment that answered.
    pub target: Arc<Deployment>,
    /// A pinned session was answered by another deployment than the one holding it (failover
    /// allowed by `agentbridge.session_failover`): the agent started the session afresh.
    pub session_new: bool,
}

/// The routing settings and the shared-state connection, for every group.
#[derive(Debug)]
pub struct Router {
    /// The settings.
    pub settings: RouterSettings,
    /// `agentbridge.session_failover`: a pinned session whose deployment fails may move.
    pub session_failover: bool,
    shared: Option<Arc<shared::Shared>>,
}

impl Router {
    /// Builds the groups from `(model_name, deployment, info)` in config order. With a Redis
    /// URL, starts the shared-state task on the current (main) runtime.
    pub fn build(
        settings: RouterSettings,
        session_failover: bool,
        deployments: Vec<(String, Arc<Deployment>, DeploymentInfo)>,
    ) -> (Self, Vec<Group>) {
        let mut groups: Vec<Group> = Vec::new();
        for (name, deployment, info) in deployments {
            let i = groups
                .iter()
                .position(|g| g.name == name)
                .unwrap_or_else(|| {
                    groups.push(Group {
                        name: name.clone(),
                        members: Vec::new(),
                        ring: affinity::Ring::new([]),
                        direct: false,
                        forwards_client_headers: false,
                    });
                    groups.len() - 1
                });
            let g = &mut groups[i];
            let id: Arc<str> = match &info.id {
                Some(id) => id.as_str().into(),
                None => format!("{name}/{}", g.members.len()).into(),
            };
            g.members.push(Member {
                id,
                deployment,
                health: Arc::default(),
                info,
            });
        }
        let usage = settings.strategy == Strategy::UsageBased;
        for g in &mut groups {
            // simple-shuffle weights: `weight`, else `rpm`, else `tpm` (LiteLLM's order), else 1.
            let share = |m: &Member| {
                m.info
                    .weight
                    .or(m.info.rpm.map(|r| r as f64))
                    .or(m.info.tpm.map(|t| t as f64))
                    .unwrap_or(1.0)
            };
            let ids: Vec<(Arc<str>, f64)> = g
                .members
                .iter()
                .map(|m| (Arc::clone(&m.id), share(m)))
                .collect();
            g.ring = affinity::Ring::new(ids.iter().map(|(id, w)| (&**id, *w)));
            let capped = g
                .members
                .iter()
                .any(|m| m.info.rpm.is_some() || m.info.tpm.is_some());
            g.direct = g.members.len() == 1
                && settings.fallbacks_of(&g.name).is_empty()
                && !(usage && capped);
        }
        let shared = settings.redis_url.as_ref().and_then(|url| {
            let home = tokio::runtime::Handle::try_current().ok()?;
            let s = shared::Shared::new(home.clone());
            let tracked: Vec<(Arc<str>, Arc<Health>)> = groups
                .iter()
                .filter(|g| !g.direct)
                .flat_map(|g| {
                    g.members
                        .iter()
                        .map(|m| (Arc::clone(&m.id), Arc::clone(&m.health)))
                })
                .collect();
            if tracked.is_empty() {
                return None;
            }
            use secrecy::ExposeSecret;
            home.spawn(Arc::clone(&s).run(url.expose_secret().to_string(), tracked));
            Some(s)
        });
        (
            Self {
                settings,
                session_failover,
                shared,
            },
            groups,
        )
    }

    /// Answers `req` from `group` (or its fallbacks, looked up with `lookup`).
    pub async fn route<'g>(
        &self,
        group: &'g Group,
        lookup: impl Fn(&str) -> Option<&'g Group>,
        client: &Client,
        req: &mut AgentRequest,
    ) -> Result<Routed> {
        if group.direct {
            let m = &group.members[0];
            return match m.deployment.invoke(client, req).await {
                Ok(answer) => Ok(Routed {
                    answer,
                    deployment: Arc::clone(&m.id),
                    target: Arc::clone(&m.deployment),
                    session_new: false,
                }),
                Err(e) => {
                    if counts(&e) {
                        m.health.note_error(now_ms(), &e);
                    }
                    Err(e.into())
                }
            };
        }
        let session = affinity::session_of(req).map(|s| s.into_owned());
        let home = session
            .as_deref()
            .and_then(|s| group.ring.owner(s, |_| false));
        let chain = std::iter::once(group).chain(
            self.settings
                .fallbacks_of(&group.name)
                .iter()
                .filter_map(|n| lookup(n)),
        );
        let mut last: Option<agentbridge::Error> = None;
        for (gi, g) in chain.enumerate() {
            if gi > 0 && session.is_some() && !self.session_failover {
                break;
            }
            let mut tried: Vec<usize> = Vec::new();
            loop {
                let now = now_ms();
                let pick = match &session {
                    Some(s) if !self.session_failover => {
                        // The session stays home, even cooling down: nowhere else holds it.
                        if tried.is_empty() {
                            g.ring.owner(s, |_| false)
                        } else {
                            None
                        }
                    }
                    Some(s) => g.ring.owner(s, |i| {
                        tried.contains(&i) || !g.members[i].health.available(now)
                    }),
                    None => self.choose(g, &tried, now),
                };
                let Some(i) = pick else { break };
                if session.is_none() && g.members.len() > 1 {
                    req.params
                        .insert("session_id".into(), Value::String(g.ring.session_for(i)));
                }
                match self.call(g, i, client, req, now).await {
                    Ok(answer) => {
                        let session_new = session.is_some() && (gi > 0 || Some(i) != home);
                        if session_new {
                            tracing::info!(deployment = %g.members[i].id, "pinned session failed over: the session is new");
                        }
                        return Ok(Routed {
                            answer,
                            deployment: Arc::clone(&g.members[i].id),
                            target: Arc::clone(&g.members[i].deployment),
                            session_new,
                        });
                    }
                    Err(e) if e.is_retryable() => {
                        tried.push(i);
                        let retries = self.retries_for(&e) as usize;
                        tracing::info!(deployment = %g.members[i].id, error = %e, "deployment failed before answering; trying another");
                        last = Some(e);
                        if tried.len() > retries {
                            break;
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Err(match last {
            Some(e) => e.into(),
            None => self.unavailable(group, now_ms()),
        })
    }

    /// One call to member `i` of `g`, with its bookkeeping.
    async fn call(
        &self,
        g: &Group,
        i: usize,
        client: &Client,
        req: &AgentRequest,
        now: u64,
    ) -> agentbridge::Result<Answer> {
        let m = &g.members[i];
        let tracked = self.settings.strategy.tracks_calls();
        m.health.begin(now, tracked);
        if let Some(s) = &self.shared
            && self.settings.strategy == Strategy::UsageBased
        {
            s.count(&m.id, &m.health, 1, 0);
        }
        let started = std::time::Instant::now();
        match m.deployment.invoke(client, req).await {
            Ok(mut answer) => {
                m.health.note_latency(started.elapsed().as_micros() as u64);
                if tracked {
                    answer.pieces = self.track(m, answer.pieces);
                }
                Ok(answer)
            }
            Err(e) => {
                if tracked {
                    m.health.end();
                }
                if !counts(&e) {
                    return Err(e);
                }
                let cooldown = if self.settings.disable_cooldowns {
                    0
                } else {
                    self.settings.cooldown_time.as_millis() as u64
                };
                if let Some(until) =
                    m.health
                        .fail(now_ms(), &e, self.settings.allowed_fails, cooldown)
                {
                    tracing::warn!(deployment = %m.id, until = %health::rfc3339(until), error = %e, "deployment cooling down");
                    if let Some(s) = &self.shared {
                        s.cooldown(&m.id, until);
                    }
                }
                Err(e)
            }
        }
    }

    /// Counts the call in flight until its answer ends, and its tokens at the end.
    fn track(
        &self,
        m: &Member,
        pieces: agentbridge::canonical::PieceStream,
    ) -> agentbridge::canonical::PieceStream {
        struct InFlight(Arc<Health>);
        impl Drop for InFlight {
            fn drop(&mut self) {
                self.0.end();
            }
        }
        let guard = InFlight(Arc::clone(&m.health));
        let (id, shared) = (Arc::clone(&m.id), self.shared.clone());
        Box::pin(pieces.map(move |p| {
            if let Ok(Piece::End(end)) = &p {
                let tokens = end.outcome.usage.total_tokens;
                guard.0.add_tokens(tokens);
                if let Some(s) = &shared {
                    s.count(&id, &guard.0, 0, tokens);
                }
            }
            p
        }))
    }

    /// The strategy's pick among the group's available deployments not yet tried.
    fn choose(&self, g: &Group, tried: &[usize], now: u64) -> Option<usize> {
        let cands: Vec<Candidate> = g
            .members
            .iter()
            .enumerate()
            .filter(|(i, m)| !tried.contains(i) && m.health.available(now))
            .map(|(index, m)| {
                let (rpm_used, tpm_used) = m.health.usage(now);
                Candidate {
                    index,
                    weight: m
                        .info
                        .weight
                        .or(m.info.rpm.map(|r| r as f64))
                        .or(m.info.tpm.map(|t| t as f64))
                        .unwrap_or(1.0),
                    in_flight: m.health.in_flight(),
                    latency_us: m.health.latency_us(),
                    rpm_used,
                    tpm_used,
                    rpm: m.info.rpm,
                    tpm: m.info.tpm,
                }
            })
            .collect();
        strategy::choose(self.settings.strategy, &cands, rand::random::<f64>())
    }

    fn retries_for(&self, e: &agentbridge::Error) -> u32 {
        let p = &self.settings.retry_policy;
        let class = match e {
            agentbridge::Error::Aws { kind, .. } if kind.status() == 429 => p.rate_limit,
            _ => p.internal_server,
        };
        class.unwrap_or(self.settings.num_retries)
    }
}
