//! `agentbridge`: the OpenAI-compatible gateway for Bedrock Agents, and its emulator.
//!
//! A thin main: parse flags, load the config, start the proxy (and, with `--emulator`, the
//! built-in Bedrock Agents emulator it talks to) or the emulator alone.

use agentbridge_emulator::{EmulatorConfig, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY};
use agentbridge_proxy::config::{self, Config, LoadOptions};
use agentbridge_proxy::server::{ServeOptions, serve, shutdown_signal};
use agentbridge_proxy::state::Gateway;
use clap::{Args, Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

mod healthcheck;

/// `--version`: the crate version and the git commit it was built from (build.rs).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("AGENTBRIDGE_COMMIT"),
    ")"
);

/// OpenAI Chat Completions for Amazon Bedrock Agents.
#[derive(Parser, Debug)]
#[command(name = "agentbridge", version = VERSION, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    proxy: ProxyArgs,
}

#[derive(Args, Debug)]
struct ProxyArgs {
    /// LiteLLM-format config file (model_list, general_settings).
    #[arg(long, short = 'c', env = "AGENTBRIDGE_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on. Default: 0.0.0.0 with a master key, 127.0.0.1 without one.
    #[arg(long)]
    host: Option<String>,
    /// Port to listen on.
    #[arg(long, short = 'p', default_value_t = 4000, env = "PORT")]
    port: u16,
    /// Serve every model from the built-in Bedrock Agents emulator instead of AWS (no AWS
    /// account needed; unset AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY get test values).
    #[arg(long)]
    emulator: bool,
    /// Accept a master key that is short or a well-known sample (local tests only).
    #[arg(long)]
    allow_weak_master_key: bool,
    /// One JSON object per log line (also `json_logs: true` in the config, as LiteLLM's).
    #[arg(long, env = "JSON_LOGS", value_parser = clap::builder::FalseyValueParser::new())]
    json_logs: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the AWS emulator: Bedrock Agents (InvokeAgent with SigV4 and event streams) and
    /// AgentCore Runtime (InvokeAgentRuntime, scripted or forwarded to a local agent).
    Emulator(EmulatorArgs),
    /// Exit 0 if the gateway answers GET /health/liveliness with 200 (container health checks).
    Healthcheck(HealthcheckArgs),
}

#[derive(Args, Debug)]
struct HealthcheckArgs {
    /// Address of the gateway.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port of the gateway.
    #[arg(long, short = 'p', default_value_t = 4000, env = "PORT")]
    port: u16,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 2)]
    timeout_secs: u64,
}

#[derive(Args, Debug)]
struct EmulatorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on.
    #[arg(long, short = 'p', default_value_t = 9001)]
    port: u16,
    /// Answer every call with one precomputed answer, no delays (for benchmarks).
    #[arg(long)]
    canned: bool,
    /// Access key id to accept (with --secret-access-key); the test key is always accepted.
    #[arg(long, requires = "secret_access_key")]
    access_key_id: Option<String>,
    /// Secret for --access-key-id.
    #[arg(long, requires = "access_key_id")]
    secret_access_key: Option<String>,
    /// Skip SigV4 verification.
    #[arg(long)]
    no_verify: bool,
    /// Inject faults into a share of calls, in percent:
    /// `throttle=5,exception=1,corrupt=0.5,truncate=0.5,stall=1`.
    #[arg(long, default_value = "")]
    faults: String,
    /// AgentCore Runtime: forward invocations to a local agent (`POST /invocations`,
    /// `GET /ping`): `URL` for every runtime, or `RUNTIME_ID=URL` for one (repeatable).
    #[arg(
        long,
        value_name = "[RUNTIME_ID=]URL",
        env = "AGENTBRIDGE_EMULATOR_AGENTCORE_FORWARD",
        value_delimiter = ','
    )]
    agentcore_forward: Vec<String>,
    /// AgentCore Runtime: a bearer token that OAuth runtimes (named `oauth*`, or
    /// given by --agentcore-oauth-runtime) accept (repeatable).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "AGENTBRIDGE_EMULATOR_AGENTCORE_BEARER",
        value_delimiter = ',',
        hide_env_values = true
    )]
    agentcore_bearer: Vec<String>,
    /// AgentCore Runtime: a runtime ID configured for OAuth besides those named `oauth*`.
    #[arg(long, value_name = "RUNTIME_ID", value_delimiter = ',')]
    agentcore_oauth_runtime: Vec<String>,
    /// AgentCore Runtime: the accounts whose runtimes exist (repeatable).
    #[arg(long, value_name = "ACCOUNT_ID", default_value = agentbridge_emulator::agentcore::DEFAULT_ACCOUNT_ID, value_delimiter = ',')]
    agentcore_account: Vec<String>,
    /// AgentCore Runtime: endpoint names (qualifiers) every runtime has besides DEFAULT.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "prod",
        value_delimiter = ','
    )]
    agentcore_endpoint: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let logs = Logs::init(cli.proxy.json_logs);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Some(Command::Emulator(args)) => run_emulator(args).await,
            Some(Command::Healthcheck(args)) => healthcheck::check(
                &args.host,
                args.port,
                std::time::Duration::from_secs(args.timeout_secs),
            )
            .await
            .map_err(Into::into),
            None => run_proxy(cli.proxy, logs).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// mimalloc: per-thread heaps, no arena lock contention under load (glibc malloc's locks
/// were ~8% of the gateway's CPU at 64 concurrent requests). Built with `no_thp`: where the
/// kernel grants transparent huge pages on request (`madvise`), mimalloc asked for them on
/// its arenas and each touched arena became 2 MiB of resident memory (peak RSS under load
/// 56 MB with it, 35 MB without, at the same CPU per request; docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type AnyError = Box<dyn std::error::Error + Send + Sync>;

type Output = Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

/// The log output: plain lines, or one JSON object per line once the config asks for it
/// (the config is read after logging starts, so the format can switch once).
struct Logs(tracing_subscriber::reload::Handle<Output, tracing_subscriber::Registry>);

impl Logs {
    fn init(json: bool) -> Self {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let first = if json { json_layer() } else { plain_layer() };
        let (output, handle) = tracing_subscriber::reload::Layer::new(first);
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| "info,hyper=warn,aws_config=warn".into());
        tracing_subscriber::registry()
            .with(output)
            .with(filter)
            .init();
        Self(handle)
    }

    /// Switches to JSON lines.
    fn json(&self) {
        let _ = self.0.reload(json_layer());
    }
}

fn plain_layer() -> Output {
    Box::new(
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
    )
}

fn json_layer() -> Output {
    Box::new(
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(std::io::stderr),
    )
}

async fn run_emulator(args: EmulatorArgs) -> Result<(), AnyError> {
    let faults = agentbridge_emulator::faults::Faults::parse(&args.faults)
        .map_err(|e| format!("--faults: {e}"))?;
    let forward = args
        .agentcore_forward
        .iter()
        .map(|f| agentbridge_emulator::agentcore::Forward::parse(f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("--agentcore-forward: {e}"))?;
    let mut config = EmulatorConfig {
        canned: args.canned,
        verify_signatures: !args.no_verify,
        faults,
        agentcore: agentbridge_emulator::agentcore::AgentCoreConfig {
            accounts: args.agentcore_account,
            endpoints: args.agentcore_endpoint,
            forward,
            bearer_tokens: args
                .agentcore_bearer
                .into_iter()
                .map(SecretString::from)
                .collect(),
            oauth_runtimes: args.agentcore_oauth_runtime,
        },
        ..Default::default()
    };
    if let (Some(ak), Some(sk)) = (args.access_key_id, args.secret_access_key) {
        config.credentials.push((ak, sk, None));
    }
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port)).await?;
    println!(
        "agentbridge emulator listening on http://{} (test credentials: {TEST_ACCESS_KEY_ID} / {TEST_SECRET_ACCESS_KEY}{})",
        listener.local_addr()?,
        if args.canned { "; canned mode" } else { "" }
    );
    agentbridge_emulator::serve(listener, config, shutdown_signal()).await?;
    Ok(())
}

async fn run_proxy(args: ProxyArgs, logs: Logs) -> Result<(), AnyError> {
    let Some(path) = args.config.as_deref() else {
        return Err("--config PATH is required (a LiteLLM-format config.yaml); see --help".into());
    };
    let opts = LoadOptions {
        allow_weak_master_key: args.allow_weak_master_key,
    };
    let mut cfg = if args.emulator {
        config::load_with_env(path, opts, &|k| {
            std::env::var(k).ok().or_else(|| match k {
                "AWS_ACCESS_KEY_ID" => Some(TEST_ACCESS_KEY_ID.into()),
                "AWS_SECRET_ACCESS_KEY" => Some(TEST_SECRET_ACCESS_KEY.into()),
                _ => None,
            })
        })?
    } else {
        config::load(path, opts)?
    };
    if cfg.observe.json_logs {
        logs.json();
    }
    for w in &cfg.warnings {
        tracing::warn!("config: {w}");
    }
    if args.emulator {
        let addr = start_emulator(&mut cfg).await?;
        println!(
            "agentbridge: --emulator: every model is served by the built-in emulator at http://{addr}"
        );
    }
    let has_key = cfg.master_key.is_some();
    let host = match (&args.host, has_key) {
        (Some(h), _) => h.clone(),
        (None, true) => "0.0.0.0".into(),
        (None, false) => "127.0.0.1".into(),
    };
    let serve_opts = ServeOptions {
        header_read_timeout: cfg.server.header_read_timeout(),
        shutdown_grace: cfg.server.shutdown_grace(),
    };
    let names: Vec<(String, String)> = cfg
        .models
        .iter()
        .map(|m| {
            (
                m.name.clone(),
                format!(
                    "{} ({})",
                    m.settings.target.model(),
                    m.settings.region.as_deref().unwrap_or("default region")
                ),
            )
        })
        .collect();
    let store = match (&cfg.master_key, &cfg.database_url, &cfg.default_database) {
        (None, _, _) => None,
        (Some(_), Some(url), _) => Some(describe_db(url.expose_secret())),
        (Some(_), None, Some(path)) => Some(format!("SQLite at {}", path.display())),
        (Some(_), None, None) => Some("SQLite at ./agentbridge.db".to_string()),
    };
    let shared = cfg.redis_url.is_some();
    let workers = match cfg.server.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let gateway = Arc::new(Gateway::new(cfg).await?);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let flusher = gateway.keys.as_ref().map(|k| k.spawn_flusher(stop_rx));
    let listener = tokio::net::TcpListener::bind((host.as_str(), args.port)).await?;
    let addr: SocketAddr = listener.local_addr()?;
    println!("agentbridge listening on http://{addr} ({workers} worker threads)");
    for (name, target) in &names {
        println!("  model {name:<24} -> {target}");
    }
    if cfg!(debug_assertions) {
        println!(
            "NOTE: a development build, for trying the gateway: build with --release for a server or a benchmark."
        );
    }
    if !has_key {
        println!(
            "WARNING: no general_settings.master_key: the API accepts any caller. {}",
            if args.host.is_some() {
                "Listening on the address given with --host."
            } else {
                "Listening on loopback only; pass --host to listen elsewhere."
            }
        );
    }
    if let Some(store) = &store {
        println!(
            "virtual keys: {store}; rate limits and budgets {}",
            if shared {
                "shared through Redis"
            } else {
                "per instance (no redis_url)"
            }
        );
    }
    let handlers = (0..workers)
        .map(|_| agentbridge_proxy::Handler::new(Arc::clone(&gateway)))
        .collect::<Result<Vec<_>, _>>()?;
    let clean = serve(listener, handlers, serve_opts, shutdown_signal()).await?;
    let _ = stop_tx.send(true);
    if let Some(f) = flusher {
        let _ = f.await;
    }
    // The spans of the last requests are still in the batch exporter's buffer: send them.
    let g = Arc::clone(&gateway);
    let _ = tokio::task::spawn_blocking(move || g.observe.shutdown()).await;
    println!(
        "agentbridge stopped{}",
        if clean {
            ""
        } else {
            " (some requests were cut at the grace deadline)"
        }
    );
    Ok(())
}

/// A database URL without its credentials, for the start-up banner.
fn describe_db(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit('@').next().unwrap_or(rest);
            format!("{scheme}://{host}")
        }
        None => "the configured database".into(),
    }
}

/// Starts the emulator in-process, points every model at it (Bedrock Agents and AgentCore
/// Runtime alike: it serves both), and makes it accept the credentials the models sign with.
async fn start_emulator(cfg: &mut Config) -> Result<SocketAddr, AnyError> {
    let mut ecfg = EmulatorConfig::default();
    for m in &mut cfg.models {
        let auth = &mut m.settings.auth;
        match (&auth.access_key_id, &auth.secret_access_key) {
            (Some(ak), Some(sk)) => ecfg.credentials.push((
                ak.expose_secret().to_string(),
                sk.expose_secret().to_string(),
                auth.session_token
                    .as_ref()
                    .map(|t| t.expose_secret().to_string()),
            )),
            _ => {
                auth.access_key_id = Some(SecretString::from(TEST_ACCESS_KEY_ID));
                auth.secret_access_key = Some(SecretString::from(TEST_SECRET_ACCESS_KEY));
                auth.profile_name = None;
                auth.role_name = None;
                auth.web_identity_token = None;
            }
        }
        // A model string that names its region (an AgentCore runtime ARN) keeps it.
        if m.settings.region.is_none() && m.settings.target.region().is_none() {
            m.settings.region = Some("us-east-1".into());
        }
        // AgentCore runtimes exist in the accounts their ARNs name; one the model reaches
        // with a fixed bearer token (`api_key`) is configured for OAuth and accepts it.
        if let Some(arn) =
            agentbridge::agentcore::arn::RuntimeArn::parse(&m.settings.target.model())
        {
            if let Some(token) = m.settings.target.bearer_token() {
                ecfg.agentcore.bearer_tokens.push(token.clone());
                ecfg.agentcore.oauth_runtimes.push(arn.runtime_id);
            }
            if !ecfg.agentcore.accounts.contains(&arn.account) {
                ecfg.agentcore.accounts.push(arn.account);
            }
        }
    }
    let addr = agentbridge_emulator::spawn(ecfg).await?;
    for m in &mut cfg.models {
        m.settings.endpoint = Some(format!("http://{addr}"));
    }
    Ok(addr)
}
