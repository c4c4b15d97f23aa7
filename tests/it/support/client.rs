//! A Rust proxy client for the tests: raw `CONNECT` (and raw HTTP/1.1
//! responses), TLS through the tunnel with tokio-rustls (trusting given PEM
//! CAs, chosen SNI and ALPN), then hyper's HTTP/1.1 or HTTP/2 client
//! connection on top.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::upstream::BoxError;

/// Every step of the client is bounded by this.
pub const STEP: Duration = Duration::from_secs(10);

pub type ReqBody = http_body_util::combinators::BoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> ReqBody {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> ReqBody {
    full(Bytes::new())
}

/// `Basic base64(hoopctl:SECRET)`.
pub fn basic_auth(secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("hoopctl:{secret}"))
    )
}

/// An HTTP/1.1 response read off a raw stream.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads a response head byte by byte (never past it), then, if it has a
/// `Content-Length`, that many body bytes.
pub async fn read_raw_response<S: AsyncRead + Unpin>(s: &mut S) -> io::Result<RawResponse> {
    tokio::time::timeout(STEP, async {
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            if s.read(&mut b).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("EOF in response head: {:?}", String::from_utf8_lossy(&head)),
                ));
            }
            head.push(b[0]);
            if head.len() > 128 * 1024 {
                return Err(io::Error::other("response head too large"));
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let len = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).await?;
        Ok(RawResponse {
            status,
            head,
            headers,
            body,
        })
    })
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no response in time"))?
}

/// Sends raw bytes to the proxy on a new connection and reads one response.
pub async fn raw_request(proxy: SocketAddr, request: &str) -> io::Result<RawResponse> {
    let mut s = TcpStream::connect(proxy).await?;
    s.write_all(request.as_bytes()).await?;
    read_raw_response(&mut s).await
}

/// `CONNECT target HTTP/1.1` with an optional `Proxy-Authorization` value.
/// Returns the stream (positioned after the response) and the response.
pub async fn connect_tunnel(
    proxy: SocketAddr,
    target: &str,
    auth: Option<&str>,
) -> io::Result<(TcpStream, RawResponse)> {
    let mut s = tokio::time::timeout(STEP, TcpStream::connect(proxy))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect to the proxy timed out"))??;
    s.set_nodelay(true)?;
    let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = auth {
        req.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await?;
    let resp = read_raw_response(&mut s).await?;
    Ok((s, resp))
}

/// A TLS client config trusting only `ca_pems`, offering `alpn`.
pub fn tls_config(ca_pems: &[&str], alpn: &[&str]) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for pem in ca_pems {
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    assert!(!roots.is_empty(), "no CA certificate to trust");
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Arc::new(config)
}

/// A TLS client config that accepts any server certificate (to show that a
/// handshake fails because of the server, not the client's verification).
pub fn accept_any_tls_config(alpn: &[&str]) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Arc::new(config)
}

#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS handshake on `io` for the server name `sni`.
pub async fn tls_connect<IO>(
    io: IO,
    config: Arc<rustls::ClientConfig>,
    sni: &str,
) -> io::Result<TlsStream<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let name = rustls_pki_types::ServerName::try_from(sni.to_string()).map_err(io::Error::other)?;
    tokio::time::timeout(
        STEP,
        tokio_rustls::TlsConnector::from(config).connect(name, io),
    )
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    H1,
    H2,
}

impl Proto {
    pub fn alpn(self) -> &'static str {
        match self {
            Proto::H1 => "http/1.1",
            Proto::H2 => "h2",
        }
    }
}

/// One HTTP client connection (HTTP/1.1 or HTTP/2) to `authority`.
pub enum Client {
    H1(http1::SendRequest<ReqBody>, String),
    H2(http2::SendRequest<ReqBody>, String),
}

impl Client {
    /// Hyper's client handshake on `io`; the connection is driven by a task.
    pub async fn handshake<IO>(io: IO, proto: Proto, authority: &str) -> Self
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let io = TokioIo::new(io);
        match proto {
            Proto::H1 => {
                let (send, conn) = http1::handshake(io).await.unwrap();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Client::H1(send, authority.to_string())
            }
            Proto::H2 => {
                let (send, conn) = http2::handshake(TokioExecutor::new(), io).await.unwrap();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Client::H2(send, authority.to_string())
            }
        }
    }

    /// A request builder for `path` on this connection: origin-form with
    /// `Host` on HTTP/1.1, an absolute https URI on HTTP/2.
    pub fn request(&self, method: Method, path: &str) -> http::request::Builder {
        match self {
            Client::H1(_, authority) => Request::builder()
                .method(method)
                .uri(path)
                .header("host", authority),
            Client::H2(_, authority) => Request::builder()
                .method(method)
                .uri(format!("https://{authority}{path}"))
                .version(http::Version::HTTP_2),
        }
    }

    /// Sends a request (bounded until the response head).
    pub async fn send(&mut self, req: Request<ReqBody>) -> hyper::Result<Response<Incoming>> {
        let fut = async {
            match self {
                Client::H1(s, _) => {
                    s.ready().await?;
                    s.send_request(req).await
                }
                Client::H2(s, _) => {
                    s.ready().await?;
                    s.send_request(req).await
                }
            }
        };
        tokio::time::timeout(STEP * 3, fut)
            .await
            .expect("no response head in time")
    }

    /// `GET path` with no body.
    pub async fn get(&mut self, path: &str) -> Response<Incoming> {
        let req = self.request(Method::GET, path).body(empty()).unwrap();
        self.send(req).await.unwrap()
    }
}

/// CONNECT `api.anthropic.com:443` through the proxy with its secret, TLS
/// trusting the proxy's CA (SNI api.anthropic.com, ALPN of `proto`), then a
/// hyper client connection.
pub async fn open_anthropic(proxy: SocketAddr, secret: &str, ca_pem: &str, proto: Proto) -> Client {
    let (tls, _) = open_anthropic_tls(proxy, secret, ca_pem, proto).await;
    Client::handshake(tls, proto, "api.anthropic.com").await
}

/// Like [`open_anthropic`], but returns the TLS stream and the negotiated ALPN.
pub async fn open_anthropic_tls(
    proxy: SocketAddr,
    secret: &str,
    ca_pem: &str,
    proto: Proto,
) -> (TlsStream<TcpStream>, Option<Vec<u8>>) {
    let (stream, resp) = connect_tunnel(proxy, "api.anthropic.com:443", Some(&basic_auth(secret)))
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "CONNECT refused: {resp:?}");
    let tls = tls_connect(
        stream,
        tls_config(&[ca_pem], &[proto.alpn()]),
        "api.anthropic.com",
    )
    .await
    .unwrap();
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    (tls, alpn)
}

/// The next data frame of a body (`None` at its end); bounded.
pub async fn next_data(body: &mut Incoming) -> Option<Bytes> {
    loop {
        let frame = tokio::time::timeout(STEP, body.frame())
            .await
            .expect("no body frame in time")?;
        let frame = frame.unwrap();
        if let Ok(data) = frame.into_data() {
            return Some(data);
        }
    }
}

/// Reads body frames into `buf` until it contains `needle`; bounded.
pub async fn read_until(body: &mut Incoming, buf: &mut Vec<u8>, needle: &str) {
    let deadline = tokio::time::Instant::now() + STEP;
    while !String::from_utf8_lossy(buf).contains(needle) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = tokio::time::timeout(left, body.frame())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{needle:?} did not arrive in time; got {:?}",
                    String::from_utf8_lossy(buf)
                )
            })
            .unwrap_or_else(|| {
                panic!(
                    "body ended before {needle:?}; got {:?}",
                    String::from_utf8_lossy(buf)
                )
            })
            .unwrap();
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
        }
    }
}

/// The whole body; bounded.
pub async fn body_bytes(resp: Response<Incoming>) -> Bytes {
    tokio::time::timeout(STEP * 3, resp.into_body().collect())
        .await
        .expect("body did not end in time")
        .unwrap()
        .to_bytes()
}

/// The whole body as JSON; bounded.
pub async fn body_json(resp: Response<Incoming>) -> serde_json::Value {
    let bytes = body_bytes(resp).await;
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&bytes)))
}
