//! # agentbridge-emulator
//!
//! A faithful emulator of the Bedrock Agents runtime's `InvokeAgent` API, so agentbridge runs
//! and is tested without an AWS account. It verifies SigV4 signatures (its own verifier),
//! writes real `application/vnd.amazon.eventstream` frames (its own writer, CRCs included),
//! validates paths and bodies against the API model's patterns and limits, remembers
//! sessions, and scripts behaviours chosen by `emulate:` tokens in the input (see
//! [`script`]). boto3's `bedrock-agent-runtime` client is tested against it.
//!
//! It also serves the Bedrock AgentCore Runtime data plane (`InvokeAgentRuntime`, see
//! [`agentcore`]): scripted agents, or a local agent process it forwards to.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let config = agentbridge_emulator::EmulatorConfig::default();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
//! agentbridge_emulator::serve(listener, config, Box::pin(std::future::pending())).await
//! # }
//! ```

pub mod agent;
pub mod agentcore;
pub mod faults;
pub mod frame;
pub mod multistep;
pub mod observe;
pub mod script;
pub mod server;
pub mod sigv4;
pub mod validate;
pub mod wire;

use futures::future::BoxFuture;
use std::net::SocketAddr;

/// The access key id the emulator accepts by default.
pub const TEST_ACCESS_KEY_ID: &str = "AKIDAGENTBRIDGEEMU";
/// The secret that goes with [`TEST_ACCESS_KEY_ID`].
pub const TEST_SECRET_ACCESS_KEY: &str = "agentbridge-emulator-secret-key";

/// How the emulator behaves.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Accepted credentials: (access key id, secret, session token).
    pub credentials: Vec<(String, String, Option<String>)>,
    /// Check signatures (on by default).
    pub verify_signatures: bool,
    /// Answer every call with one fixed, precomputed answer (for benchmarks).
    pub canned: bool,
    /// Faults injected at random into ordinary answers (for soak tests).
    pub faults: faults::Faults,
    /// The AgentCore Runtime side: account, endpoints, forwarded runtimes, bearer tokens.
    pub agentcore: agentcore::AgentCoreConfig,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            credentials: vec![(
                TEST_ACCESS_KEY_ID.into(),
                TEST_SECRET_ACCESS_KEY.into(),
                None,
            )],
            verify_signatures: true,
            canned: false,
            faults: faults::Faults::default(),
            agentcore: agentcore::AgentCoreConfig::default(),
        }
    }
}

/// Serves on `listener` until `shutdown` resolves. Accepted sockets get TCP_NODELAY.
///
/// Not generic, and its future boxed here: the HTTP server under it is compiled once, in
/// this crate, not again in each crate that awaits it (an async fn's body is compiled where
/// it is polled; in the gateway's binary that was the last step of a release build, which
/// nothing runs beside).
pub fn serve(
    listener: tokio::net::TcpListener,
    config: EmulatorConfig,
    shutdown: BoxFuture<'static, ()>,
) -> BoxFuture<'static, std::io::Result<()>> {
    Box::pin(serve_until(listener, config, shutdown))
}

async fn serve_until(
    listener: tokio::net::TcpListener,
    config: EmulatorConfig,
    shutdown: BoxFuture<'static, ()>,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "could not set TCP_NODELAY");
        }
    });
    axum::serve(listener, server::app(config))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Starts the emulator on an ephemeral loopback port in the background; returns its address.
/// (Boxed for the reason `serve` is.)
pub fn spawn(config: EmulatorConfig) -> BoxFuture<'static, std::io::Result<SocketAddr>> {
    Box::pin(start(config))
}

async fn start(config: EmulatorConfig) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = serve(listener, config, Box::pin(std::future::pending())).await {
            tracing::error!(error = %e, "emulator stopped");
        }
    });
    Ok(addr)
}
