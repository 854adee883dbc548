//! The accept loop and the worker threads that serve connections.
//!
//! Connections are accepted on the caller's runtime and handed, round robin, to one thread
//! per [`Handler`] given. Each worker is a single-threaded Tokio runtime with its own handler
//! (and so its own upstream connection pool): a request and its
//! upstream call stay on one thread, with no cross-thread wake-ups on the hot path (a shared
//! work-stealing runtime spent a large share of its CPU waking its other worker). hyper serves
//! HTTP/1.1 with a real timer (so the header-read timeout works) and TCP_NODELAY is set on
//! every accepted socket. Shutdown stops accepting, then every worker waits up to the grace
//! period for its in-flight requests and streams.

use crate::Handler;
use futures::future::BoxFuture;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

/// Connection-level limits.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Time to receive a request's headers; also how long an idle connection is kept.
    pub header_read_timeout: Duration,
    /// Time given to in-flight requests after shutdown begins.
    pub shutdown_grace: Duration,
}

struct Worker {
    connections: mpsc::UnboundedSender<std::net::TcpStream>,
    finished: oneshot::Receiver<bool>,
}

fn start_worker(i: usize, app: Handler, opts: ServeOptions) -> std::io::Result<Worker> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (done_tx, done_rx) = oneshot::channel();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(format!("agentbridge-worker-{i}"))
        .spawn(move || {
            let finished = rt.block_on(work(rx, app, opts));
            let _ = done_tx.send(finished);
        })?;
    Ok(Worker {
        connections: tx,
        finished: done_rx,
    })
}

/// One worker: serves the connections it is handed until the acceptor hangs up, then
/// waits up to the grace period for them.
async fn work(
    mut connections: mpsc::UnboundedReceiver<std::net::TcpStream>,
    app: Handler,
    opts: ServeOptions,
) -> bool {
    let graceful = GracefulShutdown::new();
    // Ends with the worker's runtime.
    tokio::spawn(tick());
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout)
        .keep_alive(true);
    while let Some(std) = connections.recv().await {
        let tcp = match TcpStream::from_std(std) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "could not register a connection");
                continue;
            }
        };
        let handler = app.clone();
        let service = hyper::service::service_fn(move |req| {
            let answer = handler.handle(req);
            async move { Ok::<_, std::convert::Infallible>(answer.await) }
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(tcp), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    tokio::time::timeout(opts.shutdown_grace, graceful.shutdown())
        .await
        .is_ok()
}

/// How often a worker's runtime wakes up on its own: see [`tick`].
const TICK: Duration = Duration::from_secs(1);

/// Keeps a timer due within [`TICK`] on the worker's runtime, so that the timers a request
/// arms (hyper's header-read timer after each response, the upstream and stream timeouts,
/// all seconds away) are never the earliest one. Tokio's timer driver wakes its own thread
/// (an eventfd write) whenever a timer is armed earlier than the wake-up it last planned;
/// without this, the header-read timer did that once per request, a seventh of the worker's
/// system calls at concurrency 1. An idle worker wakes once a second instead.
async fn tick() {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
    }
}

/// Serves with `handlers` (one worker thread each) on `listener` until `shutdown` resolves,
/// then stops accepting and waits up to the grace period for in-flight requests and streams.
/// Returns whether every connection finished in time.
///
/// Not generic, and its future boxed here: an async fn's body is compiled where it is
/// polled, and the binary's crate is the last step of a release build, which nothing runs
/// beside (`Gateway::new` says the same).
pub fn serve(
    listener: TcpListener,
    handlers: Vec<Handler>,
    opts: ServeOptions,
    shutdown: BoxFuture<'static, ()>,
) -> BoxFuture<'static, std::io::Result<bool>> {
    Box::pin(serve_until(listener, handlers, opts, shutdown))
}

async fn serve_until(
    listener: TcpListener,
    handlers: Vec<Handler>,
    opts: ServeOptions,
    shutdown: BoxFuture<'static, ()>,
) -> std::io::Result<bool> {
    if handlers.is_empty() {
        return Err(std::io::Error::other("serve: no handlers given"));
    }
    let mut workers = handlers
        .into_iter()
        .enumerate()
        .map(|(i, app)| start_worker(i, app, opts))
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut next = 0usize;
    let mut shutdown = shutdown;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let tcp = match accepted {
                    Ok((tcp, _)) => tcp,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::warn!(error = %e, "could not set TCP_NODELAY");
                }
                let std = match tcp.into_std() {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not hand a connection over");
                        continue;
                    }
                };
                next = (next + 1) % workers.len();
                if workers[next].connections.send(std).is_err() {
                    tracing::error!(worker = next, "a worker thread has stopped");
                }
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!(
        grace_secs = opts.shutdown_grace.as_secs_f64(),
        "shutting down: no new connections; waiting for in-flight requests"
    );
    let waits: Vec<_> = workers.drain(..).map(|w| w.finished).collect();
    let mut finished = true;
    for w in waits {
        finished &= w.await.unwrap_or(false);
    }
    if !finished {
        tracing::warn!("grace period over; closed the remaining connections");
    }
    Ok(finished)
}

/// Resolves on SIGTERM or SIGINT.
pub fn shutdown_signal() -> BoxFuture<'static, ()> {
    Box::pin(signalled())
}

async fn signalled() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}
