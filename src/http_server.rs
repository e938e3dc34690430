//! Serves a role's HTTP routes: an accept loop over hyper that bounds how long a client may
//! take to send its request headers (and its TLS handshake), serves TLS natively with a
//! certificate reloaded on SIGHUP, backs off when accepting fails (out of descriptors), and
//! shuts down gracefully.

use crate::config::{Settings, TlsFiles};
use anyhow::Context;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Service;

/// How long open HTTP connections may take to finish after shutdown (SSE streams and
/// WebSockets are closed by the gateway itself; this bounds requests in flight).
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);
/// Pause after a failed accept: out of descriptors, retrying at once would spin a core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// At most one log line per this interval about failed accepts.
const ACCEPT_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// The URL scheme a role serves with these settings (`https` with a certificate).
pub(crate) fn scheme(settings: &Settings) -> &'static str {
    if settings.tls.is_some() {
        "https"
    } else {
        "http"
    }
}

/// Serves `router` on `listener` until `shutdown` fires, then lets requests in flight finish
/// (up to a deadline). Handlers read the client's address from `ConnectInfo<SocketAddr>`.
/// Fails at once when the TLS certificate or key cannot be loaded.
pub(crate) fn serve_http(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    settings: &Settings,
) -> impl Future<Output = anyhow::Result<()>> + Send + 'static {
    let header_read_timeout = settings.header_read_timeout;
    let tls = settings.tls.clone();
    async move {
        let acceptor = match tls {
            Some(files) => Some(reloading_acceptor(files, shutdown.clone())?),
            None => None,
        };
        accept_loop(listener, router, shutdown, header_read_timeout, acceptor).await;
        Ok(())
    }
}

type SharedAcceptor = Arc<RwLock<TlsAcceptor>>;

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    header_read_timeout: Duration,
    tls: Option<SharedAcceptor>,
) {
    let connections = TaskTracker::new();
    let mut failures = AcceptFailures::default();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                failures.note(&error);
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        // Without TCP_NODELAY a small frame written while the previous one is unacknowledged
        // waits for the peer's delayed ACK (up to 40 ms): that was most of the latency tail.
        let _ = stream.set_nodelay(true);
        let acceptor = tls
            .as_ref()
            .map(|tls| tls.read().unwrap_or_else(|e| e.into_inner()).clone());
        let connection = serve_connection(
            stream,
            peer,
            router.clone(),
            header_read_timeout,
            acceptor,
            shutdown.clone(),
        );
        connections.spawn(connection);
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(DRAIN_DEADLINE, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("HTTP connections still open after the shutdown deadline");
    }
}

/// Serves one TCP connection: TLS handshake (bounded by the header timeout, which a stalled
/// handshake would otherwise escape), then HTTP/1.1 with upgrades. HTTP/1.1 only: the header
/// timeout then runs from the first moment a request is awaited (also between keep-alive
/// requests), whereas sniffing for HTTP/2 would wait for a silent client's first bytes forever.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    header_read_timeout: Duration,
    acceptor: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) {
    let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
        // Handlers that bound resources per client read its address from `ConnectInfo`.
        request.extensions_mut().insert(ConnectInfo(peer));
        router.clone().call(request)
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let result = match acceptor {
        None => {
            let connection = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            until_drained(connection, &shutdown).await
        }
        Some(acceptor) => {
            let stream =
                match tokio::time::timeout(header_read_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
            let connection = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            until_drained(connection, &shutdown).await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "HTTP connection ended with an error");
    }
}

/// Runs an HTTP connection; on shutdown lets its request in flight finish, then closes it (an
/// idle keep-alive connection closes at once). A connection upgraded to a WebSocket has left
/// hyper by then: the gateway closes those with a close frame.
async fn until_drained<C>(connection: C, shutdown: &CancellationToken) -> hyper::Result<()>
where
    C: Future<Output = hyper::Result<()>> + GracefulShutdown,
{
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => result,
        _ = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    }
}

/// The graceful shutdown of hyper's HTTP/1 connection (plain and TLS alike).
trait GracefulShutdown {
    fn graceful_shutdown(self: std::pin::Pin<&mut Self>);
}

impl<I, S, B> GracefulShutdown for http1::UpgradeableConnection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful_shutdown(self: std::pin::Pin<&mut Self>) {
        http1::UpgradeableConnection::graceful_shutdown(self);
    }
}

/// Logs failed accepts at most once per [`ACCEPT_LOG_INTERVAL`], with how many were not logged.
#[derive(Default)]
struct AcceptFailures {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl AcceptFailures {
    fn note(&mut self, error: &std::io::Error) {
        let due = self
            .last_logged
            .is_none_or(|at| at.elapsed() >= ACCEPT_LOG_INTERVAL);
        if !due {
            self.unlogged += 1;
            return;
        }
        tracing::warn!(
            %error,
            also_failed = self.unlogged,
            "cannot accept connections (out of file descriptors? see max_connections); backing off"
        );
        self.last_logged = Some(Instant::now());
        self.unlogged = 0;
    }
}

/// A TLS acceptor with the certificate in `files`, swapped for a fresh one on each SIGHUP.
/// Connections already open keep the configuration they started with; a reload that fails
/// keeps the previous one and logs why.
fn reloading_acceptor(
    files: TlsFiles,
    shutdown: CancellationToken,
) -> anyhow::Result<SharedAcceptor> {
    let acceptor = Arc::new(RwLock::new(load_acceptor(&files)?));
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot listen for SIGHUP (TLS certificate reloads)")?;
    let reloaded = acceptor.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                signal = hangup.recv() => if signal.is_none() { break },
            }
            match load_acceptor(&files) {
                Ok(fresh) => {
                    *reloaded.write().unwrap_or_else(|e| e.into_inner()) = fresh;
                    tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded");
                }
                Err(error) => tracing::error!(
                    error = format!("{error:#}"),
                    "TLS certificate not reloaded; still serving the previous one"
                ),
            }
        }
    });
    Ok(acceptor)
}

fn load_acceptor(files: &TlsFiles) -> anyhow::Result<TlsAcceptor> {
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read TLS certificate {}", files.cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("no certificate in {}", files.cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("cannot read TLS private key {}", files.key.display()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .with_context(|| {
            format!(
                "TLS certificate {} does not go with key {}",
                files.cert.display(),
                files.key.display()
            )
        })?;
    // HTTP/1.1 only over TLS: WebSockets upgrade over it, and browsers then never try HTTP/2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
