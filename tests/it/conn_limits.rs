//! Connection limits end to end (issue 16): every phase of a connection has
//! a timeout, listeners cap their connections and back off when accept()
//! fails, the control socket bounds its lines and answers, and egress is
//! decided by host and port. Everything listens on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::client::{self, Client, Proto};
use crate::support::upstream::Upstream;
use crate::support::{self, Env, Proxy};

/// Reads until EOF or an error; returns how long that took, or `None` if
/// the connection was still open after `within`.
async fn closed_within<S: AsyncRead + Unpin>(s: &mut S, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// A TLS ClientHello for `name` (an IP address sends no SNI).
fn client_hello(name: &str) -> Vec<u8> {
    let config = client::accept_any_tls_config(&["h2", "http/1.1"]);
    let name = rustls_pki_types::ServerName::try_from(name.to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    assert_eq!(out[0], 0x16);
    out
}

/// A connection that sends a ClientHello straight to the listener
/// (base-URL TLS, no authentication at all) and then stalls.
async fn stalled_base_url_tls(proxy: std::net::SocketAddr) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(proxy).await?;
    s.write_all(&client_hello("127.0.0.1")).await?;
    Ok(s)
}

/// User + system CPU seconds of a process so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name in parentheses; utime and stime are 14 and 15.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// `hoopctl connect` in the foreground under `prlimit --nofile=N`, its log in `log`.
fn start_limited(env: &Env, nofile: u32, args: &[&str], log: &Path) -> Proxy {
    support::require("prlimit");
    let mut cmd = Command::new("prlimit");
    env.apply(&mut cmd);
    cmd.arg(format!("--nofile={nofile}:{nofile}"))
        .arg(support::hoopctl_bin())
        .args([
            "--output",
            "json",
            "connect",
            "claude-code",
            "--direct",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(args)
        .env("RUST_LOG", "hoopctl=debug");
    let file = std::fs::File::create(log).unwrap();
    Proxy::spawn_with_stderr(cmd, Stdio::from(file))
}

fn control_socket(env: &Env, proxy: &Proxy) -> PathBuf {
    env.path("run")
        .join(format!("hoopctl-{}.sock", proxy.child.id()))
}

// 1. A client that stalls inside the TLS handshake is closed after the
//    handshake timeout: in a CONNECT tunnel, and on the base-URL TLS port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_tls_handshakes_are_closed() {
    let env = Env::new();
    let proxy = env.start_proxy(&[
        "--upstream",
        "http://127.0.0.1:9",
        "--tls-handshake-timeout",
        "1",
    ]);
    let auth = client::basic_auth(&proxy.secret);

    let (mut tunnel, resp) =
        client::connect_tunnel(proxy.addr, "api.anthropic.com:443", Some(&auth))
            .await
            .unwrap();
    assert_eq!(resp.status, 200);
    tunnel
        .write_all(&client_hello("api.anthropic.com"))
        .await
        .unwrap();
    let took = closed_within(&mut tunnel, Duration::from_secs(6)).await;
    let took = took.expect("a TLS handshake stalled in a tunnel is still open after 6 s");
    assert!(
        took >= Duration::from_millis(700),
        "closed at once: {took:?}"
    );

    let mut direct = stalled_base_url_tls(proxy.addr).await.unwrap();
    let took = closed_within(&mut direct, Duration::from_secs(6)).await;
    let took = took.expect("a base-URL TLS handshake stalled is still open after 6 s");
    assert!(
        took >= Duration::from_millis(700),
        "closed at once: {took:?}"
    );
}

// 2. HTTP/2: a connection that never sends its preface (or a first request)
//    is closed after the header timeout, an idle one after the idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http2_connections_are_closed() {
    let up = Upstream::start();
    let env = Env::new();
    let proxy = env.start_proxy(&[
        "--upstream",
        &up.url(),
        "--header-read-timeout",
        "1",
        "--idle-timeout",
        "2",
    ]);
    let ca = proxy.ca_pem();

    // TLS done with h2 negotiated, then nothing: no preface.
    let (mut tls, alpn) =
        client::open_anthropic_tls(proxy.addr, &proxy.secret, &ca, Proto::H2).await;
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    let took = closed_within(&mut tls, Duration::from_secs(6))
        .await
        .expect("an h2 connection without a preface is still open after 6 s");
    assert!(took >= Duration::from_millis(700), "{took:?}");

    // One request, then idle.
    let mut c = client::open_anthropic(proxy.addr, &proxy.secret, &ca, Proto::H2).await;
    let resp = c.get("/v1/echo").await;
    assert_eq!(resp.status(), StatusCode::OK);
    client::body_bytes(resp).await;
    let Client::H2(send, _) = &c else {
        unreachable!()
    };
    let started = Instant::now();
    while !send.is_closed() {
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "an idle h2 connection is still open after 8 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1500), "{took:?}");
}

// 3. HTTP/1.1 keep-alive: with no request in flight the connection closes
//    after the header timeout (hyper 1 runs it for every request head,
//    the 2nd and later ones too), well before the idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http1_keep_alive_connections_are_closed() {
    let up = Upstream::start();
    let env = Env::new();
    // 3 s: long enough that a loaded machine sends both requests in time.
    let proxy = env.start_proxy(&["--upstream", &up.url(), "--header-read-timeout", "3"]);
    let ca = proxy.ca_pem();
    let (tls, _) = client::open_anthropic_tls(proxy.addr, &proxy.secret, &ca, Proto::H1).await;
    let (mut send, conn) = hyper::client::conn::http1::handshake::<_, client::ReqBody>(
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    let conn = tokio::spawn(conn);
    for _ in 0..2 {
        let req = http::Request::get("/v1/echo")
            .header("host", "api.anthropic.com")
            .body(client::empty())
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        client::body_bytes(resp).await;
    }
    let ended = tokio::time::timeout(Duration::from_secs(10), conn).await;
    assert!(
        ended.is_ok(),
        "an idle keep-alive connection is still open after 10 s"
    );
}

/// An upstream that takes requests and never answers.
async fn stopped_upstream() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

// 4. A stopped upstream: the agent gets an Anthropic-shaped 504
//    (timeout_error) that may be retried, after the response-head timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_upstream_gets_a_504() {
    let addr = stopped_upstream().await;
    let env = Env::new();
    let url = format!("http://{addr}");
    let proxy = env.start_proxy(&["--upstream", &url, "--response-head-timeout", "1"]);
    let ca = proxy.ca_pem();
    for proto in [Proto::H1, Proto::H2] {
        let mut c = client::open_anthropic(proxy.addr, &proxy.secret, &ca, proto).await;
        let started = Instant::now();
        let resp = tokio::time::timeout(Duration::from_secs(8), c.get("/v1/messages"))
            .await
            .expect("no answer 8 s after the upstream stopped");
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(900), "{took:?}");
        assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(resp.headers()["x-should-retry"], "true");
        let json = client::body_json(resp).await;
        assert_eq!(json["type"], "error");
        assert_eq!(json["error"]["type"], "timeout_error", "{json}");
        let message = json["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&addr.to_string()) && message.contains("1s"),
            "{message}"
        );
    }
}

/// A proxy whose policy allows tunnels to `allow` (an `[egress]` entry).
fn proxy_allowing(env: &Env, allow: &str, extra: &[&str]) -> Proxy {
    let policy = support::write_policy(env, &format!("[egress]\nallow = [\"{allow}\"]\n"));
    let mut args = vec!["--upstream", "http://127.0.0.1:9", "--policy"];
    args.push(policy.to_str().unwrap());
    args.extend(extra);
    env.start_proxy(&args)
}

// 5. Egress by host and port: an allowed host is tunnelled on 443 only,
//    unless its `allow` entry names the port; nothing is dialled otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_is_decided_by_host_and_port() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dialled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = dialled.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(s);
        }
    });

    let env = Env::new();
    let proxy = proxy_allowing(&env, "127.0.0.1", &[]);
    let auth = client::basic_auth(&proxy.secret);
    let target = format!("127.0.0.1:{port}");
    let (_, resp) = client::connect_tunnel(proxy.addr, &target, Some(&auth))
        .await
        .unwrap();
    assert_eq!(resp.status, 403, "{resp:?}");
    let text = resp.text();
    assert!(
        text.contains(&format!("on port {port}"))
            && text.contains(&format!("\"127.0.0.1:{port}\"")),
        "{text}"
    );
    for target in ["claude.ai:25", "api.anthropic.com:25"] {
        let (_, resp) = client::connect_tunnel(proxy.addr, target, Some(&auth))
            .await
            .unwrap();
        assert_eq!(resp.status, 403, "{target}: {resp:?}");
        assert!(resp.text().contains("on port 25"), "{}", resp.text());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(dialled.load(std::sync::atomic::Ordering::SeqCst), 0);
    drop(proxy);

    // Named with its port, it is tunnelled.
    let env = Env::new();
    let proxy = proxy_allowing(&env, &format!("127.0.0.1:{port}"), &[]);
    let auth = client::basic_auth(&proxy.secret);
    let (_, resp) = client::connect_tunnel(proxy.addr, &target, Some(&auth))
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{resp:?}");
    // A CONNECT without a port, or with port 0, is malformed.
    for bad in ["127.0.0.1", "127.0.0.1:0"] {
        let (_, resp) = client::connect_tunnel(proxy.addr, bad, Some(&auth))
            .await
            .unwrap();
        assert_eq!(resp.status, 400, "{bad}: {resp:?}");
    }
}

// 5b. A tunnel with no traffic either way is closed after the idle
//     timeout; one that keeps talking stays open past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_tunnels_are_closed_and_busy_ones_kept() {
    // An echo server behind the tunnel.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let env = Env::new();
    let proxy = proxy_allowing(&env, &format!("127.0.0.1:{port}"), &["--idle-timeout", "1"]);
    let auth = client::basic_auth(&proxy.secret);
    let target = format!("127.0.0.1:{port}");

    // Busy: a byte every 300 ms for 3 s (three idle periods) is echoed.
    let (mut busy, resp) = client::connect_tunnel(proxy.addr, &target, Some(&auth))
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{resp:?}");
    for _ in 0..10 {
        busy.write_all(b"x").await.unwrap();
        let mut b = [0u8; 1];
        tokio::time::timeout(Duration::from_secs(2), busy.read_exact(&mut b))
            .await
            .expect("no echo: the busy tunnel was closed")
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Silent: closed within the idle timeout and a third.
    let (mut silent, resp) = client::connect_tunnel(proxy.addr, &target, Some(&auth))
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{resp:?}");
    let took = closed_within(&mut silent, Duration::from_secs(5))
        .await
        .expect("a silent tunnel is still open after 5 s");
    assert!(took >= Duration::from_millis(900), "{took:?}");
}

// 6. Many unauthenticated connections stalled in the TLS handshake under a
//    low descriptor limit: extra ones are closed at once (the cap), the
//    stalled ones after the handshake timeout, then real requests work, and
//    the proxy does not spin meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connections_cannot_starve_real_ones() {
    let up = Upstream::start();
    let env = Env::new();
    let log = env.path("proxy.log");
    let proxy = start_limited(
        &env,
        128,
        &["--upstream", &up.url(), "--tls-handshake-timeout", "2"],
        &log,
    );
    let pid = proxy.child.id();
    let ca = proxy.ca_pem();
    let cpu_before = cpu_seconds(pid);
    let mut stalled = Vec::new();
    for _ in 0..300 {
        if let Ok(s) = stalled_base_url_tls(proxy.addr).await {
            stalled.push(s);
        }
    }
    // Real requests work again once the stalled ones are closed.
    let started = Instant::now();
    loop {
        let attempt = tokio::time::timeout(Duration::from_secs(2), async {
            let (stream, resp) = client::connect_tunnel(
                proxy.addr,
                "api.anthropic.com:443",
                Some(&client::basic_auth(&proxy.secret)),
            )
            .await
            .ok()?;
            (resp.status == 200).then_some(())?;
            let tls = client::tls_connect(
                stream,
                client::tls_config(&[&ca], &["http/1.1"]),
                "api.anthropic.com",
            )
            .await
            .ok()?;
            let mut c = Client::handshake(tls, Proto::H1, "api.anthropic.com").await;
            Some(c.get("/v1/echo").await.status())
        })
        .await;
        if let Ok(Some(status)) = attempt {
            assert_eq!(status, StatusCode::OK);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(12),
            "no real request got through 12 s after 300 stalled handshakes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cpu = cpu_seconds(pid) - cpu_before;
    eprintln!(
        "real request through after {:?}; proxy CPU {cpu:.2}s",
        started.elapsed()
    );
    assert!(cpu < 2.0, "the proxy used {cpu:.2}s of CPU");
    // Every stalled connection is closed by now or shortly.
    for s in &mut stalled {
        assert!(closed_within(s, Duration::from_secs(4)).await.is_some());
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let warnings = text.matches("connection limit reached").count();
    assert!(
        (1..=3).contains(&warnings),
        "{warnings} limit lines in the log"
    );
}

async fn greeted(path: &Path) -> tokio::net::UnixStream {
    let mut s = tokio::net::UnixStream::connect(path).await.unwrap();
    let mut first = [0u8; 1];
    s.read_exact(&mut first).await.unwrap();
    assert_eq!(first[0], b'{');
    s
}

// 7. The control socket: a line over 64 KiB closes that client; the server
//    keeps serving others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_lines_are_bounded() {
    let env = Env::new();
    let proxy = env.start_proxy(&["--upstream", "http://127.0.0.1:9"]);
    let path = control_socket(&env, &proxy);
    let mut s = greeted(&path).await;
    let (mut r, mut w) = s.split();
    let chunk = vec![b'x'; 16 * 1024];
    let write = async {
        for _ in 0..64 {
            if w.write_all(&chunk).await.is_err() {
                break;
            }
        }
    };
    let read = closed_within(&mut r, Duration::from_secs(5));
    let (_, closed) = tokio::join!(write, read);
    assert!(
        closed.is_some(),
        "a client sending a 1 MiB line is still connected"
    );
    let out = env.run_ok(&["pending"]);
    assert!(out.contains("No tool calls"), "{out}");
}

// 8. A socket that accepts but never greets is an error, not "nothing pending".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_control_socket_is_an_error() {
    let env = Env::new();
    let _proxy = env.start_proxy(&["--upstream", "http://127.0.0.1:9"]);
    let silent = env.path("run").join("hoopctl-999999.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&silent).unwrap();
    let started = Instant::now();
    let out = env
        .cmd()
        .arg("pending")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "exit 0: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        err.contains("hoopctl-999999.sock") && err.contains("did not answer"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
}

// 9. Stale control sockets (kill -9) are removed at start; live ones, and
//    anything that is not a socket, are left alone.
#[test]
fn stale_control_sockets_are_removed_at_start() {
    let env = Env::new();
    let mut first = env.start_proxy(&["--upstream", "http://127.0.0.1:9"]);
    let stale = control_socket(&env, &first);
    assert!(stale.exists());
    support::signal(&first.child, "KILL");
    first.child.wait().unwrap();
    assert!(stale.exists(), "kill -9 left no socket to clean up");
    let planted = env.path("run").join("hoopctl-1.sock");
    std::os::unix::fs::symlink(env.path("elsewhere"), &planted).unwrap();

    let live = env.start_proxy(&["--upstream", "http://127.0.0.1:9"]);
    let live_socket = control_socket(&env, &live);
    let second = env.start_proxy(&["--upstream", "http://127.0.0.1:9"]);
    assert!(!stale.exists(), "the dead proxy's socket is still there");
    assert!(live_socket.exists(), "a live proxy's socket was removed");
    assert!(
        std::fs::symlink_metadata(&planted).is_ok(),
        "a symlink was removed"
    );
    assert!(control_socket(&env, &second).exists());
}

// 10. The control socket's accept loop backs off when the process has no
//     descriptors left instead of burning a core, and recovers after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_accept_backs_off_when_out_of_descriptors() {
    let env = Env::new();
    let log = env.path("proxy.log");
    let proxy = start_limited(&env, 64, &["--upstream", "http://127.0.0.1:9"], &log);
    let pid = proxy.child.id();
    let path = control_socket(&env, &proxy);
    let mut held = Vec::new();
    for _ in 0..60 {
        held.push(tokio::net::UnixStream::connect(&path).await.unwrap());
    }
    // Let the descriptors run out; then measure.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let before = cpu_seconds(pid);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cpu = cpu_seconds(pid) - before;
    eprintln!("control socket out of descriptors ({fds} open): {cpu:.2}s CPU in 3 s");
    assert!(fds >= 60, "descriptors did not run out ({fds} open)");
    assert!(cpu < 0.5, "{cpu:.2}s of CPU in 3 s while accept() fails");
    drop(held);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let out = env.run_ok(&["pending"]);
    assert!(out.contains("No tool calls"), "{out}");
}
