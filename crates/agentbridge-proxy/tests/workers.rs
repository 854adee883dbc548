//! The accept loop with several worker threads: connections spread over the workers, the
//! chat fast path and the router both answer, and shutdown waits for in-flight requests.

#![allow(clippy::unwrap_used)] // test helpers: a failure is a failed test

use agentbridge_proxy::config::{LoadOptions, parse};
use agentbridge_proxy::server::{ServeOptions, serve};
use agentbridge_proxy::{Handler, state::Gateway};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn gateway() -> Arc<Gateway> {
    let addr = agentbridge_emulator::spawn(Default::default())
        .await
        .unwrap();
    let text = format!(
        "model_list:\n  - model_name: agent\n    litellm_params:\n      model: bedrock/agent/L1RT58GYRW/MFPSBCXYTW\n      aws_access_key_id: {}\n      aws_secret_access_key: {}\n      aws_region_name: us-west-2\n      api_base: http://{addr}\n",
        agentbridge_emulator::TEST_ACCESS_KEY_ID,
        agentbridge_emulator::TEST_SECRET_ACCESS_KEY
    );
    let cfg = parse(&text, &|_| None, LoadOptions::default()).unwrap();
    Arc::new(Gateway::new(cfg).await.unwrap())
}

/// One HTTP/1.1 request on a kept-alive connection; returns status and JSON body.
async fn request(conn: &mut TcpStream, method: &str, path: &str, body: &str) -> (u16, Value) {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = conn.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed mid-response");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let head = &text[..end];
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap();
            if buf.len() >= end + 4 + len {
                let status = head[9..12].parse().unwrap();
                let json =
                    serde_json::from_slice(&buf[end + 4..end + 4 + len]).unwrap_or(Value::Null);
                return (status, json);
            }
        }
    }
}

const CHAT: &str = r#"{"model": "agent", "messages": [{"role": "user", "content": "hello"}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_spread_over_workers_and_shutdown_waits_for_requests() {
    let gw = gateway().await;
    let handlers: Vec<Handler> = (0..3)
        .map(|_| Handler::new(Arc::clone(&gw)).unwrap())
        .collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let opts = ServeOptions {
        header_read_timeout: Duration::from_secs(5),
        shutdown_grace: Duration::from_secs(10),
    };
    let server = tokio::spawn(serve(
        listener,
        handlers,
        opts,
        Box::pin(async {
            let _ = stop_rx.await;
        }),
    ));

    // Nine kept-alive connections (three per worker), each with a chat on the fast path,
    // a route through the router and a second chat.
    let clients: Vec<_> = (0..9)
        .map(|i| {
            tokio::spawn(async move {
                let mut c = TcpStream::connect(addr).await.unwrap();
                let (status, body) = request(&mut c, "POST", "/v1/chat/completions", CHAT).await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["object"], "chat.completion");
                let (status, body) = request(&mut c, "GET", "/v1/models", "").await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["data"][0]["id"], "agent");
                let (status, _) = request(&mut c, "PUT", "/v1/chat/completions", CHAT).await;
                assert_eq!(status, 405, "other methods go through the router");
                let (status, body) = request(&mut c, "POST", "/chat/completions", CHAT).await;
                assert_eq!(status, 200, "{body}");
                i
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }

    // A slow answer in flight when shutdown begins still completes.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let in_flight = tokio::spawn(async move {
        request(
            &mut slow,
            "POST",
            "/v1/chat/completions",
            r#"{"model": "agent", "messages": [{"role": "user", "content": "hi emulate:slow=400"}]}"#,
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    stop_tx.send(()).unwrap();
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "the answer came after shutdown began"
    );
    assert!(
        server.await.unwrap().unwrap(),
        "every connection finished in the grace period"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no new connections after shutdown"
    );
}
