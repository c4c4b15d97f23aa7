//! Self-tests of the gateway double (support/gateway.rs), driven directly with
//! a rustls + hyper client that trusts only the double's CA. No OIDC provider.

use std::time::Duration;

use http::{Method, Response};
use hyper::body::Incoming;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::support::client::{
    body_json, empty, full, next_data, read_until, tls_config, tls_connect, Client, Proto,
};
use crate::support::fake_anthropic::{FakeAnthropic, Script};
use crate::support::gateway::{Decision, Gateway, GatewayConfig, DEFAULT_API_KEY};
use crate::support::upstream::{sse_event, Upstream};

const API_TOKEN: &str = "oidc-access-token";

/// A client connection to one of the double's listeners.
async fn connect(gw: &Gateway, port: u16, proto: Proto) -> Client {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let tls = tls_connect(
        tcp,
        tls_config(&[&gw.ca_pem()], &[proto.alpn()]),
        "127.0.0.1",
    )
    .await
    .unwrap();
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    assert_eq!(alpn.as_deref(), Some(proto.alpn().as_bytes()));
    Client::handshake(tls, proto, &format!("127.0.0.1:{port}")).await
}

async fn api(
    c: &mut Client,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut req = c.request(method, path);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if !body.is_empty() {
        req = req.header("content-type", "application/json");
    }
    let resp = c
        .send(req.body(full(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, body_json(resp).await)
}

/// `POST /api/connections/claude-code/credentials` with `{}`: the 201 body.
async fn mint(c: &mut Client) -> Value {
    let (status, v) = api(
        c,
        Method::POST,
        "/api/connections/claude-code/credentials",
        Some(API_TOKEN),
        "{}",
    )
    .await;
    assert_eq!(status, 201, "{v}");
    v
}

async fn proxied(
    c: &mut Client,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response<Incoming> {
    let mut req = c.request(Method::POST, path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    c.send(req.body(full(body.to_string())).unwrap())
        .await
        .unwrap()
}

fn cfg(upstream: String) -> GatewayConfig {
    GatewayConfig {
        upstream,
        ..GatewayConfig::default()
    }
}

#[tokio::test]
async fn api_mints_credentials_like_the_real_gateway() {
    let gw = Gateway::start(GatewayConfig {
        max_duration: Some(600),
        ..GatewayConfig::default()
    });
    for proto in [Proto::H1, Proto::H2] {
        let mut c = connect(&gw, gw.api_port(), proto).await;
        let (s, v) = api(&mut c, Method::GET, "/api/publicserverinfo", None, "").await;
        assert_eq!(s, 200);
        assert_eq!(v["auth_method"], "oidc");
        assert!(v.get("oidc_issuer").is_none(), "{v}");

        let path = "/api/connections/claude-code/credentials";
        let (s, v) = api(&mut c, Method::POST, path, None, "{}").await;
        assert_eq!(
            (s, v["message"].as_str()),
            (401, Some("missing authorization header"))
        );
        let (s, v) = api(&mut c, Method::POST, path, Some(API_TOKEN), "").await;
        assert_eq!((s, v), (400, serde_json::json!({"message": "EOF"})));

        let v = mint(&mut c).await;
        let cc = &v["connection_credentials"];
        assert_eq!(cc["port"], Value::String(gw.proxy_port().to_string()));
        assert_eq!(cc["hostname"], "127.0.0.1");
        let token = cc["proxy_token"].as_str().unwrap();
        assert!(
            token.starts_with("claude-code-") && token.len() == 44,
            "{token}"
        );
        assert_eq!(v["connection_type"], "httpproxy");
        assert_eq!(v["connection_subtype"], "claude-code");
        assert_eq!(v["has_review"], false);
        assert!(v["review_id"].is_null() && v["expire_at"].is_null(), "{v}");

        // The duration is capped; expire_at is RFC 3339 UTC.
        let (s, v) = api(
            &mut c,
            Method::POST,
            path,
            Some(API_TOKEN),
            r#"{"access_duration_seconds": 3600}"#,
        )
        .await;
        assert_eq!(s, 201, "{v}");
        let created =
            chrono::DateTime::parse_from_rfc3339(v["created_at"].as_str().unwrap()).unwrap();
        let expire = v["expire_at"].as_str().unwrap();
        assert!(expire.ends_with('Z'), "{expire}");
        let expire = chrono::DateTime::parse_from_rfc3339(expire).unwrap();
        assert_eq!((expire - created).num_seconds(), 600);

        // The active credential is the newest one.
        let (s, active) = api(&mut c, Method::GET, path, Some(API_TOKEN), "").await;
        assert_eq!((s, &active["id"]), (200, &v["id"]));

        let (s, v) = api(
            &mut c,
            Method::POST,
            "/api/connections/missing/credentials",
            Some(API_TOKEN),
            "{}",
        )
        .await;
        assert_eq!(
            (s, v["message"].as_str()),
            (404, Some("connection not found"))
        );
        let (s, _) = api(&mut c, Method::GET, "/api/nothing", Some(API_TOKEN), "").await;
        assert_eq!(s, 404);
        let (s, v) = api(&mut c, Method::GET, "/api/userinfo", Some(API_TOKEN), "").await;
        assert_eq!((s, v["groups"][0].as_str()), (200, Some("developers")));
    }
    let creds = gw.credentials();
    assert_eq!(creds.len(), 4);
    assert_eq!(creds[1].duration, Some(600));
    assert_eq!(creds[0].user, "test");
    assert_eq!(gw.api_log().len(), 18);
    assert!(!gw.api_log()[0].authorization);
}

#[tokio::test]
async fn proxy_forwards_with_the_gateway_key_and_rejects_bad_tokens() {
    let fake = FakeAnthropic::start(Script::default()).unwrap();
    let gw = Gateway::start(cfg(fake.url()));
    let mut c = connect(&gw, gw.api_port(), Proto::H1).await;
    let cred = mint(&mut c).await;
    let token = cred["connection_credentials"]["proxy_token"]
        .as_str()
        .unwrap()
        .to_string();
    let body = r#"{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;

    let mut p2 = connect(&gw, gw.proxy_port(), Proto::H2).await;
    let bearer = format!("Bearer {token}");
    let resp = proxied(
        &mut p2,
        "/v1/messages?beta=true",
        &[
            ("authorization", &bearer),
            ("anthropic-version", "2023-06-01"),
        ],
        body,
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(body_json(resp).await["type"], "message");

    let mut p1 = connect(&gw, gw.proxy_port(), Proto::H1).await;
    let resp = proxied(&mut p1, "/v1/messages", &[("x-api-key", &token)], body).await;
    assert_eq!(resp.status(), 200);
    body_json(resp).await;

    let seen = fake.requests();
    assert_eq!(seen.len(), 2, "{:?}", fake.request_lines());
    assert_eq!(seen[0].path, "/v1/messages?beta=true");
    assert_eq!(seen[0].header("anthropic-version"), Some("2023-06-01"));
    for r in &seen {
        assert_eq!(r.header("x-api-key"), Some(DEFAULT_API_KEY));
        assert_eq!(r.header("authorization"), None);
        assert_eq!(r.json().unwrap()["model"], "claude-sonnet-4-5");
    }
    let log = gw.proxy_log();
    assert_eq!(log[0].authorization.as_deref(), Some(bearer.as_str()));
    assert_eq!(log[0].version, "HTTP/2.0");
    assert_eq!(log[1].x_api_key.as_deref(), Some(token.as_str()));
    assert_eq!(log[1].status, 200);

    // No token, an unknown token.
    let resp = proxied(&mut p1, "/v1/messages", &[], body).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        body_json(resp).await["message"],
        "missing Authorization or X-Api-Key header"
    );
    let resp = proxied(
        &mut p1,
        "/v1/messages",
        &[("authorization", "claude-code-0")],
        body,
    )
    .await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        body_json(resp).await["message"],
        "Invalid Cookie/Authorization"
    );

    // Injected failures answer before forwarding.
    gw.fail_proxy(1, 529, "overloaded");
    let resp = proxied(&mut p1, "/v1/messages", &[("authorization", &token)], body).await;
    assert_eq!(resp.status(), 529);
    assert_eq!(body_json(resp).await["message"], "overloaded");
    assert_eq!(fake.requests().len(), 2);

    // A revoked token is refused.
    gw.revoke(cred["id"].as_str().unwrap());
    let resp = proxied(&mut p2, "/v1/messages", &[("authorization", &bearer)], body).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        body_json(resp).await["message"],
        "Invalid Cookie/Authorization"
    );
    let (s, _) = api(
        &mut c,
        Method::GET,
        "/api/connections/claude-code/credentials",
        Some(API_TOKEN),
        "",
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn revoke_and_expire_cut_streams_in_flight() {
    let up = Upstream::start();
    let gw = Gateway::start(cfg(up.url()));
    let mut c = connect(&gw, gw.api_port(), Proto::H1).await;
    for (proto, expire) in [(Proto::H1, false), (Proto::H2, true)] {
        let cred = mint(&mut c).await;
        let token = cred["connection_credentials"]["proxy_token"]
            .as_str()
            .unwrap()
            .to_string();
        let mut p = connect(&gw, gw.proxy_port(), proto).await;
        let req = p
            .request(Method::GET, "/sse?n=3&gate=1&tag=g")
            .header("authorization", &token)
            .body(empty())
            .unwrap();
        let resp = p.send(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let mut body = resp.into_body();
        let mut buf = Vec::new();
        read_until(&mut body, &mut buf, &sse_event("g", 1)).await;
        let id = cred["id"].as_str().unwrap();
        if expire {
            gw.expire(id);
        } else {
            gw.revoke(id);
        }
        // The stream fails instead of going on (the gate stays closed).
        let end = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match http_body_util::BodyExt::frame(&mut body).await {
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Some(e),
                    None => return None,
                }
            }
        })
        .await
        .expect("the stream was not cut");
        assert!(
            end.is_some(),
            "the stream ended cleanly instead of being cut"
        );
        let creds = gw.credentials();
        let cr = creds.iter().find(|c| c.id == id).unwrap();
        assert_eq!((cr.revoked, cr.expire_at.is_some()), (!expire, expire));
    }
}

#[tokio::test]
async fn review_flow_pending_approved_resumed() {
    let fake = FakeAnthropic::start(Script::default()).unwrap();
    let gw = Gateway::start(GatewayConfig {
        review: true,
        review_status: 202,
        default_duration: Some(3600),
        hostname: "localhost".to_string(),
        ..cfg(fake.url())
    });
    let mut c = connect(&gw, gw.api_port(), Proto::H2).await;
    let (s, v) = api(
        &mut c,
        Method::POST,
        "/api/connections/claude-code/credentials",
        Some(API_TOKEN),
        "{}",
    )
    .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["has_review"], true);
    assert!(v["connection_credentials"].is_null(), "{v}");
    let review_id = v["review_id"].as_str().unwrap().to_string();
    let session = v["session_id"].as_str().unwrap().to_string();
    let (s, r) = api(
        &mut c,
        Method::GET,
        &format!("/api/reviews/{review_id}"),
        Some(API_TOKEN),
        "",
    )
    .await;
    assert_eq!((s, r["status"].as_str()), (200, Some("PENDING")));
    assert_eq!(r["session"], session.as_str());

    // The minted token is useless while the review is pending.
    let token = gw.credentials()[0].proxy_token.clone();
    let mut p = connect(&gw, gw.proxy_port(), Proto::H1).await;
    let resp = proxied(&mut p, "/v1/messages", &[("x-api-key", &token)], "{}").await;
    assert_eq!(resp.status(), 401);
    body_json(resp).await;

    let resume = format!("/api/connections/claude-code/credentials/{session}");
    let (s, v) = api(&mut c, Method::POST, &resume, Some(API_TOKEN), "").await;
    assert_eq!((s, v["message"].as_str()), (400, Some("EOF")));
    let (s, v) = api(&mut c, Method::POST, &resume, Some(API_TOKEN), "{}").await;
    assert_eq!((s, v["message"].as_str()), (400, Some("review is pending")));

    gw.decide(&review_id, Decision::Approve);
    // Approved but not resumed yet: still useless.
    let resp = proxied(&mut p, "/v1/messages", &[("x-api-key", &token)], "{}").await;
    assert_eq!(resp.status(), 401);
    body_json(resp).await;
    let (s, v) = api(&mut c, Method::POST, &resume, Some(API_TOKEN), "{}").await;
    assert_eq!(s, 201, "{v}");
    let cc = &v["connection_credentials"];
    assert_eq!(cc["proxy_token"], token.as_str());
    assert_eq!(cc["hostname"], "localhost");
    assert!(v["expire_at"].is_string(), "{v}");
    let resp = proxied(
        &mut p,
        "/v1/messages",
        &[("x-api-key", &token)],
        r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#,
    )
    .await;
    assert_eq!(resp.status(), 200);
    body_json(resp).await;

    // A rejection decided in the background.
    gw.decide_after(
        Duration::from_millis(100),
        Decision::Reject("not now".into()),
    );
    let v = api(
        &mut c,
        Method::POST,
        "/api/connections/claude-code/credentials",
        Some(API_TOKEN),
        "{}",
    )
    .await
    .1;
    let session = v["session_id"].as_str().unwrap();
    let review_id = v["review_id"].as_str().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, r) = api(
            &mut c,
            Method::GET,
            &format!("/api/reviews/{review_id}"),
            Some(API_TOKEN),
            "",
        )
        .await;
        if r["status"] == "REJECTED" {
            assert_eq!(r["rejection_reason"], "not now");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never rejected: {r}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (s, v) = api(
        &mut c,
        Method::POST,
        &format!("/api/connections/claude-code/credentials/{session}"),
        Some(API_TOKEN),
        "{}",
    )
    .await;
    assert_eq!(
        (s, v["message"].as_str()),
        (403, Some("review was rejected: not now"))
    );
    assert_eq!(gw.reviews().len(), 2);
}

#[tokio::test]
async fn stop_refuses_connections_and_restart_keeps_the_ports_and_state() {
    let fake = FakeAnthropic::start(Script::default()).unwrap();
    let gw = Gateway::start(cfg(fake.url()));
    let mut c = connect(&gw, gw.api_port(), Proto::H1).await;
    let token = mint(&mut c).await["connection_credentials"]["proxy_token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut p = connect(&gw, gw.proxy_port(), Proto::H2).await;

    gw.stop();
    for port in [gw.api_port(), gw.proxy_port()] {
        let e = TcpStream::connect(("127.0.0.1", port)).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    }
    // The open connection is gone too.
    let req = p
        .request(Method::GET, "/v1/models")
        .header("authorization", &token)
        .body(empty())
        .unwrap();
    assert!(p.send(req).await.is_err());

    gw.restart();
    let mut p = connect(&gw, gw.proxy_port(), Proto::H1).await;
    let resp = proxied(
        &mut p,
        "/v1/messages",
        &[("authorization", &token)],
        r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    assert!(next_data(&mut body).await.is_some());
    let mut c = connect(&gw, gw.api_port(), Proto::H1).await;
    let (s, _) = api(
        &mut c,
        Method::GET,
        "/api/connections/claude-code/credentials",
        Some(API_TOKEN),
        "",
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(gw.credentials().len(), 1);
}
