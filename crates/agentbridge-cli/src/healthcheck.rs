//! `agentbridge healthcheck`: calls the gateway's liveliness endpoint and succeeds only on a
//! 200. Container images without a shell or curl (the distroless one in `Dockerfile`) run it
//! as their `HEALTHCHECK`.

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::time::Duration;

/// The path checked: the gateway answers it while its process is serving.
pub const LIVELINESS_PATH: &str = "/health/liveliness";

/// `GET http://{host}:{port}/health/liveliness`; `Ok` on 200, otherwise what went wrong.
pub async fn check(host: &str, port: u16, timeout: Duration) -> Result<(), String> {
    tokio::time::timeout(timeout, get(host, port))
        .await
        .map_err(|_| format!("no answer from {host}:{port} within {timeout:?}"))?
}

async fn get(host: &str, port: u16) -> Result<(), String> {
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {host}:{port}: {e}"))?;
    tokio::spawn(conn);
    let request = http::Request::get(LIVELINESS_PATH)
        .header(http::header::HOST, format!("{host}:{port}"))
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("GET {LIVELINESS_PATH}: {e}"))?;
    match response.status() {
        http::StatusCode::OK => Ok(()),
        s => Err(format!("GET {LIVELINESS_PATH} answered {s}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::service::service_fn;
    use std::convert::Infallible;

    /// A server on loopback answering every request with `status`; returns its port.
    async fn server(status: u16) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let svc = service_fn(
                    move |req: http::Request<hyper::body::Incoming>| async move {
                        let code = if req.uri().path() == LIVELINESS_PATH {
                            status
                        } else {
                            404
                        };
                        Ok::<_, Infallible>(
                            http::Response::builder()
                                .status(code)
                                .body(http_body_util::Full::new(Bytes::from_static(b"x")))
                                .unwrap(),
                        )
                    },
                );
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc),
                );
            }
        });
        port
    }

    #[tokio::test]
    async fn a_200_on_liveliness_is_healthy() {
        let port = server(200).await;
        assert_eq!(
            check("127.0.0.1", port, Duration::from_secs(5)).await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn any_other_status_is_unhealthy() {
        let port = server(503).await;
        let err = check("127.0.0.1", port, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(err.contains("503"), "{err}");
    }

    #[tokio::test]
    async fn nothing_listening_is_unhealthy() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let err = check("127.0.0.1", port, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(err.contains("cannot connect"), "{err}");
    }
}
