//! The RFC 8252 loopback redirect: a one-shot listener on
//! `127.0.0.1:{ephemeral port}` that receives the browser's callback,
//! checks `state`, shows a clean page, and hands back the code.
//!
//! Owns: the callback's parsing and pages. Must not: exchange codes.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::oidc::Error;

/// What came back on the callback.
#[derive(Debug)]
pub struct Callback {
    pub code: String,
    pub iss: Option<String>,
}

/// The bound listener; its URL goes into the authorization request.
pub struct Listener {
    listener: TcpListener,
}

impl Listener {
    pub async fn bind() -> std::io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind("127.0.0.1:0").await?,
        })
    }

    pub fn redirect_uri(&self) -> String {
        let port = self.listener.local_addr().map(|a| a.port()).unwrap_or(0);
        format!("http://127.0.0.1:{port}/callback")
    }

    /// Waits for the callback. Requests for other paths (a favicon) get a
    /// 404 and the wait goes on; the first `/callback` decides.
    pub async fn wait(self, state: &str) -> Result<Callback, Error> {
        loop {
            let (mut stream, _) = self
                .listener
                .accept()
                .await
                .map_err(|e| Error::Callback(e.to_string()))?;
            let Some(target) = read_target(&mut stream).await else {
                continue;
            };
            let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
            if path != "/callback" {
                respond(
                    &mut stream,
                    404,
                    "Not found",
                    "This is hoopctl's login callback.",
                )
                .await;
                continue;
            }
            let params: HashMap<String, String> = form_urlencoded(query);
            let outcome = judge(&params, state);
            match &outcome {
                Ok(_) => {
                    respond(
                        &mut stream,
                        200,
                        "Logged in",
                        "hoopctl is logged in. You can close this tab and return to the terminal.",
                    )
                    .await
                }
                Err(e) => {
                    respond(
                        &mut stream,
                        400,
                        "Login failed",
                        &format!(
                        "hoopctl could not log you in: {e}. Return to the terminal for details."
                    ),
                    )
                    .await
                }
            }
            return outcome;
        }
    }
}

fn judge(params: &HashMap<String, String>, state: &str) -> Result<Callback, Error> {
    if let Some(error) = params.get("error") {
        let mut msg = error.clone();
        if let Some(d) = params.get("error_description") {
            msg.push_str(&format!(" ({d})"));
        }
        return Err(Error::Denied(msg));
    }
    match params.get("state") {
        Some(s) if crate::secret::constant_time_eq(s.as_bytes(), state.as_bytes()) => {}
        Some(_) => {
            return Err(Error::Callback(
                "its state does not match this login attempt (a stale or forged callback)".into(),
            ))
        }
        None => return Err(Error::Callback("it carries no state".into())),
    }
    let Some(code) = params.get("code").filter(|c| !c.is_empty()) else {
        return Err(Error::Callback("it carries no authorization code".into()));
    };
    Ok(Callback {
        code: code.clone(),
        iss: params.get("iss").cloned(),
    })
}

/// Reads the request line's target (bounded, with a timeout).
async fn read_target(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(2048);
    let read = async {
        loop {
            let mut chunk = [0u8; 2048];
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.len() > 16 * 1024 {
                return Some(());
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .ok()??;
    let line = buf.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    let _method = parts.next()?;
    parts.next().map(str::to_string)
}

fn form_urlencoded(query: &str) -> HashMap<String, String> {
    openidconnect::url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn respond(stream: &mut TcpStream, status: u16, title: &str, body: &str) {
    let reason = if status == 200 {
        "OK"
    } else if status == 404 {
        "Not Found"
    } else {
        "Bad Request"
    };
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>hoopctl: {t}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;color:#222}}</style></head>\
         <body><h1>{t}</h1><p>{b}</p></body></html>",
        t = html_escape(title),
        b = html_escape(body)
    );
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        html.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(html.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn callbacks_are_judged() {
        assert_eq!(
            judge(&p(&[("code", "c"), ("state", "s")]), "s")
                .unwrap()
                .code,
            "c"
        );
        assert!(judge(&p(&[("code", "c"), ("state", "x")]), "s")
            .unwrap_err()
            .to_string()
            .contains("state does not match"));
        assert!(judge(&p(&[("state", "s")]), "s")
            .unwrap_err()
            .to_string()
            .contains("no authorization code"));
        let e = judge(
            &p(&[
                ("error", "access_denied"),
                ("error_description", "no"),
                ("state", "s"),
            ]),
            "s",
        )
        .unwrap_err();
        assert!(e.to_string().contains("access_denied (no)"));
        assert_eq!(html_escape("<b>"), "&lt;b&gt;");
    }
}
