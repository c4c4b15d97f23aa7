//! The scripted agent: a client that reaches "api.anthropic.com" through the
//! proxy exactly as Claude Code does (SPEC §2): `CONNECT api.anthropic.com:443`
//! with `Proxy-Authorization: Basic base64(hoopctl:SECRET)`, TLS trusting
//! only the proxy's CA (SNI api.anthropic.com), then HTTP/1.1
//! `POST /v1/messages` with `stream: true`, reading the answer event by event.
//! It keeps the conversation and runs nothing.
//!
//! Owns: the client side of one tunnel. Must not: connect anywhere but the
//! proxy's loopback address.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{header, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::script;
use crate::agent::claude_code::ProxyEnv;
use crate::anthropic::sse;
use crate::proxy::PROXY_USER;

/// The host the agent believes it talks to.
pub const API_HOST: &str = "api.anthropic.com";

/// Bounds every step but a held answer (which the proxy keeps alive with pings).
const STEP: Duration = Duration::from_secs(15);
/// Longest silence inside an answer (the proxy pings every 10 s while it holds one).
const IDLE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the demo agent could not reach the proxy: {0}")]
    Connect(std::io::Error),
    #[error("the proxy refused the CONNECT: {0}")]
    Refused(String),
    #[error("TLS through the proxy failed: {0}")]
    Tls(String),
    #[error("HTTP through the proxy failed: {0}")]
    Http(String),
    #[error("the API answered {status}: {message}")]
    Api { status: u16, message: String },
    #[error("timed out: {0}")]
    Timeout(&'static str),
}

/// One assistant answer as the agent received it.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// The content blocks (`text`, `tool_use` with its parsed `input`).
    pub content: Vec<Value>,
    pub stop_reason: Option<String>,
}

impl Answer {
    /// The texts of the answer, in order.
    pub fn texts(&self) -> Vec<String> {
        self.content
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .map(str::to_string)
            .collect()
    }

    /// The tool calls of the answer: `(id, name, input)`.
    pub fn tool_uses(&self) -> Vec<(String, String, Value)> {
        self.content
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
            .map(|b| {
                (
                    b.get("id")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    b.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    b.get("input").cloned().unwrap_or(Value::Null),
                )
            })
            .collect()
    }
}

/// The agent: one tunnel, one conversation.
pub struct Agent {
    send: http1::SendRequest<Full<Bytes>>,
    session: String,
    messages: Vec<Value>,
}

impl Agent {
    /// Opens the tunnel and the TLS session through the proxy at `env`.
    pub async fn connect(env: &ProxyEnv) -> Result<Self, Error> {
        let mut tcp = tokio::time::timeout(STEP, TcpStream::connect(env.listen))
            .await
            .map_err(|_| Error::Timeout("connecting to the proxy"))?
            .map_err(Error::Connect)?;
        let _ = tcp.set_nodelay(true);
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{PROXY_USER}:{}", env.secret.expose()));
        let connect = format!(
            "CONNECT {API_HOST}:443 HTTP/1.1\r\nHost: {API_HOST}:443\r\nProxy-Authorization: Basic {auth}\r\n\r\n"
        );
        tcp.write_all(connect.as_bytes())
            .await
            .map_err(Error::Connect)?;
        let head = tokio::time::timeout(STEP, read_head(&mut tcp))
            .await
            .map_err(|_| Error::Timeout("waiting for the CONNECT answer"))??;
        let status_line = head.lines().next().unwrap_or_default().to_string();
        if status_line.split(' ').nth(1) != Some("200") {
            return Err(Error::Refused(status_line));
        }
        let config = tls_config(&env.ca_cert)?;
        let name = rustls_pki_types::ServerName::try_from(API_HOST)
            .map_err(|e| Error::Tls(e.to_string()))?;
        let tls = tokio::time::timeout(
            STEP,
            tokio_rustls::TlsConnector::from(config).connect(name, tcp),
        )
        .await
        .map_err(|_| Error::Timeout("the TLS handshake"))?
        .map_err(|e| Error::Tls(e.to_string()))?;
        let (send, conn) = http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| Error::Http(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let session = uuid_like(&crate::secret::random_hex(16).unwrap_or_default());
        Ok(Self {
            send,
            session,
            messages: Vec::new(),
        })
    }

    /// The `X-Claude-Code-Session-Id` this agent sends.
    pub fn session(&self) -> &str {
        &self.session
    }

    /// Sends a user message (a string, or content blocks), reads the answer
    /// and adds both to the conversation.
    pub async fn turn(&mut self, content: Value) -> Result<Answer, Error> {
        self.messages
            .push(json!({"role": "user", "content": content}));
        let body = json!({
            "model": script::MODEL,
            "max_tokens": 1024,
            "stream": true,
            "messages": self.messages,
            "tools": [{
                "name": "Bash",
                "description": "Run a shell command",
                "input_schema": {"type": "object", "properties": {
                    "command": {"type": "string"}, "description": {"type": "string"}},
                    "required": ["command"]},
            }],
        });
        let req = Request::post("/v1/messages")
            .header(header::HOST, API_HOST)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "text/event-stream")
            .header("x-api-key", script::API_KEY)
            .header("anthropic-version", "2023-06-01")
            .header("x-claude-code-session-id", &self.session)
            .header(header::USER_AGENT, "hoopctl-demo-agent/1.0")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| Error::Http(e.to_string()))?;
        let resp = tokio::time::timeout(STEP, async {
            self.send
                .ready()
                .await
                .map_err(|e| Error::Http(e.to_string()))?;
            self.send
                .send_request(req)
                .await
                .map_err(|e| Error::Http(e.to_string()))
        })
        .await
        .map_err(|_| Error::Timeout("waiting for the answer"))??;
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        if status != 200 {
            let bytes = tokio::time::timeout(STEP, body.collect())
                .await
                .map_err(|_| Error::Timeout("reading an error answer"))?
                .map_err(|e| Error::Http(e.to_string()))?
                .to_bytes();
            let message = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            return Err(Error::Api { status, message });
        }
        let mut framer = sse::Framer::new();
        let mut reader = Reader::default();
        loop {
            let frame = tokio::time::timeout(IDLE, body.frame())
                .await
                .map_err(|_| Error::Timeout("the answer stalled"))?;
            let Some(frame) = frame else { break };
            let frame = frame.map_err(|e| Error::Http(e.to_string()))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            for ev in framer.push(&data) {
                let ev = ev.map_err(|e| Error::Http(e.to_string()))?;
                reader.feed(ev.name.as_deref(), &ev.data)?;
            }
        }
        for ev in framer.finish() {
            let ev = ev.map_err(|e| Error::Http(e.to_string()))?;
            reader.feed(ev.name.as_deref(), &ev.data)?;
        }
        let answer = reader.finish();
        self.messages
            .push(json!({"role": "assistant", "content": answer.content}));
        Ok(answer)
    }
}

/// Rebuilds the content blocks of a streamed answer (SPEC §3).
#[derive(Default)]
struct Reader {
    blocks: Vec<Value>,
    partial_json: Vec<String>,
    stop_reason: Option<String>,
}

impl Reader {
    fn feed(&mut self, name: Option<&str>, data: &str) -> Result<(), Error> {
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            return Ok(());
        };
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .or(name)
            .unwrap_or_default();
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
        match kind {
            "content_block_start" => {
                while self.blocks.len() <= index {
                    self.blocks.push(Value::Null);
                    self.partial_json.push(String::new());
                }
                self.blocks[index] = v.get("content_block").cloned().unwrap_or(Value::Null);
            }
            "content_block_delta" => {
                let delta = &v["delta"];
                if let Some(t) = delta.get("text").and_then(Value::as_str) {
                    if let Some(Value::String(s)) =
                        self.blocks.get_mut(index).and_then(|b| b.get_mut("text"))
                    {
                        s.push_str(t);
                    }
                }
                if let Some(p) = delta.get("partial_json").and_then(Value::as_str) {
                    if let Some(acc) = self.partial_json.get_mut(index) {
                        acc.push_str(p);
                    }
                }
            }
            "content_block_stop" => {
                let text = self.partial_json.get(index).cloned().unwrap_or_default();
                if let Some(block) = self.blocks.get_mut(index) {
                    if block.get("type").and_then(Value::as_str) == Some("tool_use")
                        && !text.is_empty()
                    {
                        block["input"] = serde_json::from_str(&text).unwrap_or(Value::Null);
                    }
                }
            }
            "message_delta" => {
                if let Some(r) = v["delta"].get("stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(r.to_string());
                }
            }
            "error" => {
                return Err(Error::Api {
                    status: 200,
                    message: v["error"]["message"]
                        .as_str()
                        .unwrap_or("an error event")
                        .to_string(),
                })
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(self) -> Answer {
        Answer {
            content: self.blocks.into_iter().filter(|b| !b.is_null()).collect(),
            stop_reason: self.stop_reason,
        }
    }
}

/// Reads an HTTP response head (never past it).
async fn read_head(s: &mut TcpStream) -> Result<String, Error> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        if s.read(&mut b).await.map_err(Error::Connect)? == 0 {
            return Err(Error::Refused("the proxy closed the connection".into()));
        }
        head.push(b[0]);
        if head.len() > 64 * 1024 {
            return Err(Error::Refused("response head too large".into()));
        }
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// A client config trusting only the CA in `ca_pem` (the demo's own).
fn tls_config(ca_pem: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, Error> {
    use rustls_pki_types::pem::PemObject;
    let pem =
        std::fs::read(ca_pem).map_err(|e| Error::Tls(format!("{}: {e}", ca_pem.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem).flatten() {
        roots
            .add(cert)
            .map_err(|e| Error::Tls(format!("the demo CA: {e}")))?;
    }
    if roots.is_empty() {
        return Err(Error::Tls(format!(
            "no certificate in {}",
            ca_pem.display()
        )));
    }
    let mut config = rustls::ClientConfig::builder_with_provider(crate::supervisor::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// 32 hex digits as 8-4-4-4-12.
fn uuid_like(hex: &str) -> String {
    let h = format!("{hex:0<32}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        let u = uuid_like("0123456789abcdef0123456789abcdef");
        assert_eq!(u, "01234567-89ab-cdef-0123-456789abcdef");
        assert_eq!(uuid_like("").len(), 36);
    }

    #[test]
    fn the_reader_rebuilds_blocks() {
        let turn = script::answer(&json!({"messages": [{"role": "user", "content": "x"}]}));
        let bytes = super::super::upstream::sse_events("msg_1", &turn);
        let mut framer = sse::Framer::new();
        let mut r = Reader::default();
        for ev in framer.push(&bytes) {
            let ev = ev.unwrap();
            r.feed(ev.name.as_deref(), &ev.data).unwrap();
        }
        let a = r.finish();
        assert_eq!(a.content, turn.content);
        assert_eq!(a.stop_reason.as_deref(), Some("tool_use"));
        assert_eq!(a.tool_uses()[0].2["command"], script::DESTRUCTIVE);
    }
}
