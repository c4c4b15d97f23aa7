//! `hoopctl watch`: the live TUI. Attaches to every running proxy of this
//! user over its control socket (and to proxies that start or restart
//! later), feeds their events to the pure `watch::App`, carries out its
//! actions (approve, deny, open a detail from the record) and draws.
//!
//! Owns: the terminal (raw mode, alternate screen, always restored, also
//! on error or panic) and the sockets. The views belong to `crate::watch`.

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;
use crossterm::event::{Event as TermEvent, KeyEventKind};
use tokio::sync::mpsc;

use crate::approvals::Approval;
use crate::audit::store::{Reader, StoredEvent};
use crate::control::client::{sockets, Conn};
use crate::control::protocol::{Command, Hello};
use crate::events::Event;
use crate::watch::{Action, App, Detail};

/// How often the runtime directory is scanned for new proxies.
const SCAN_EVERY: Duration = Duration::from_millis(700);
/// Redraws at least this often (countdowns).
const TICK: Duration = Duration::from_millis(250);

/// What the socket tasks and the input thread tell the UI loop.
enum Msg {
    Up(Hello, PathBuf),
    Down(u32, PathBuf, String),
    Pending(u32, Vec<Approval>),
    Event(u32, Event),
    Key(crossterm::event::KeyEvent),
    Paste(String),
    Resize,
    Done(String, bool),
    Detail(String, Detail),
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Restores the terminal when dropped (normal exit, error, or unwinding).
struct Screen;

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableBracketedPaste);
        ratatui::restore();
    }
}

/// Runs the TUI until `q`, Ctrl-C, or `stop`.
pub async fn run(
    runtime: PathBuf,
    audit_db: PathBuf,
    stop: Option<tokio_util::sync::CancellationToken>,
) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!("hoopctl watch needs a terminal; in scripts use `hoopctl pending`, `hoopctl approve ID` and `hoopctl deny ID`");
    }
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    // ratatui::init installs a panic hook that restores the terminal first.
    let mut terminal = ratatui::init();
    let _screen = Screen;
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableBracketedPaste);

    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let input_stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    spawn_input(tx.clone(), input_stop.clone());
    let scanner = tokio::spawn(scan(runtime, tx.clone()));

    let mut app = App::new(color);
    let mut paths: HashMap<u32, PathBuf> = HashMap::new();
    // The detail last asked for: a slower, older load must not replace it.
    let mut wanted: Option<String> = None;
    let mut tick = tokio::time::interval(TICK);
    let stopped = async {
        match &stop {
            Some(s) => s.cancelled().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stopped);
    let result = loop {
        if let Err(e) = terminal.draw(|f| crate::watch::ui::draw(f, &mut app)) {
            break Err(anyhow::anyhow!("could not draw: {e}"));
        }
        tokio::select! {
            _ = &mut stopped => break Ok(()),
            _ = tick.tick() => app.tick(now_ms()),
            msg = rx.recv() => {
                let Some(msg) = msg else { break Ok(()) };
                let mut batch = vec![msg];
                // Take a burst at once and draw once.
                while batch.len() < 4096 {
                    match rx.try_recv() {
                        Ok(m) => batch.push(m),
                        Err(_) => break,
                    }
                }
                for msg in batch {
                    if let Msg::Detail(id, d) = msg {
                        if wanted.as_deref() == Some(id.as_str()) {
                            app.set_detail(d);
                        }
                        continue;
                    }
                    if let Some(action) = handle(&mut app, &mut paths, msg) {
                        if let Action::OpenDetail { request_id, .. } = &action {
                            wanted = Some(request_id.clone());
                        }
                        act(action, &mut app, &paths, &audit_db, &tx);
                    }
                }
                if app.should_quit() {
                    break Ok(());
                }
            }
        }
    };
    input_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    scanner.abort();
    result
}

/// Applies one message; keys may produce an action.
fn handle(app: &mut App, paths: &mut HashMap<u32, PathBuf>, msg: Msg) -> Option<Action> {
    match msg {
        Msg::Up(hello, path) => {
            paths.insert(hello.pid, path);
            app.proxy_up(&hello);
        }
        Msg::Down(pid, path, why) => {
            if paths.get(&pid) == Some(&path) {
                paths.remove(&pid);
            }
            app.proxy_down(pid, &why);
        }
        Msg::Pending(pid, list) => app.pending(pid, list),
        Msg::Event(pid, ev) => app.apply(pid, ev, now_ms()),
        Msg::Key(k) if k.kind != KeyEventKind::Release => return app.on_key(k),
        Msg::Key(_) | Msg::Resize => {}
        Msg::Paste(text) => app.on_paste(&text),
        Msg::Done(text, error) => app.notice(text, error),
        Msg::Detail(..) => {}
    }
    None
}

/// Carries out an action off the UI loop; the outcome comes back as a message.
fn act(
    action: Action,
    app: &mut App,
    paths: &HashMap<u32, PathBuf>,
    audit_db: &Path,
    tx: &mpsc::UnboundedSender<Msg>,
) {
    let tx = tx.clone();
    match action {
        Action::Quit => {}
        Action::Approve { pid, id } | Action::Deny { pid, id, .. } if !paths.contains_key(&pid) => {
            app.notice(
                format!("proxy {pid} is gone; {id} was settled when it stopped"),
                true,
            );
        }
        Action::Approve { pid, id } => {
            let path = paths.get(&pid).cloned().unwrap_or_default();
            tokio::spawn(async move {
                let cmd = Command::Approve { id: id.clone() };
                let _ = tx.send(decide(&path, cmd, &format!("approved {id}")).await);
            });
        }
        Action::Deny { pid, id, reason } => {
            let path = paths.get(&pid).cloned().unwrap_or_default();
            tokio::spawn(async move {
                let cmd = Command::Deny {
                    id: id.clone(),
                    reason,
                };
                let _ = tx.send(decide(&path, cmd, &format!("denied {id}")).await);
            });
        }
        Action::OpenDetail { pid: _, request_id } => {
            let db = audit_db.to_path_buf();
            tokio::task::spawn_blocking(move || {
                let d = detail(&db, &request_id);
                let _ = tx.send(Msg::Detail(request_id, d));
            });
        }
    }
}

async fn decide(path: &Path, cmd: Command, done: &str) -> Msg {
    let result = async {
        let mut conn = Conn::connect(path).await?;
        conn.call(&cmd).await
    }
    .await;
    match result {
        Ok(r) if r.ok => Msg::Done(done.to_string(), false),
        Ok(r) => Msg::Done(r.error.unwrap_or_else(|| "refused".into()), true),
        Err(e) => Msg::Done(e.to_string(), true),
    }
}

/// Reads terminal input on its own thread (crossterm's reader blocks).
fn spawn_input(
    tx: mpsc::UnboundedSender<Msg>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    std::thread::spawn(move || {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            match crossterm::event::poll(Duration::from_millis(100)) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(_) => break,
            }
            let msg = match crossterm::event::read() {
                Ok(TermEvent::Key(k)) => Msg::Key(k),
                Ok(TermEvent::Paste(p)) => Msg::Paste(p),
                Ok(TermEvent::Resize(..)) => Msg::Resize,
                Ok(_) => continue,
                Err(_) => break,
            };
            if tx.send(msg).is_err() {
                break;
            }
        }
    });
}

/// Attaches to every control socket that appears in `runtime`, again after
/// a proxy restarts.
async fn scan(runtime: PathBuf, tx: mpsc::UnboundedSender<Msg>) {
    let attached = std::sync::Arc::new(std::sync::Mutex::new(HashSet::<PathBuf>::new()));
    loop {
        for path in sockets(&runtime) {
            let fresh = match attached.lock() {
                Ok(mut a) => a.insert(path.clone()),
                Err(_) => false,
            };
            if fresh {
                let (tx, attached) = (tx.clone(), attached.clone());
                tokio::spawn(async move {
                    follow(&path, &tx).await;
                    if let Ok(mut a) = attached.lock() {
                        a.remove(&path);
                    }
                });
            }
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(SCAN_EVERY).await;
    }
}

/// One proxy: greet, subscribe, take the pending list, then relay events
/// until the socket closes.
async fn follow(path: &Path, tx: &mpsc::UnboundedSender<Msg>) {
    let Ok(mut conn) = Conn::connect(path).await else {
        // A stale socket of a proxy that died; tried again on the next scan.
        tokio::time::sleep(Duration::from_secs(2)).await;
        return;
    };
    let pid = conn.hello.pid;
    if !matches!(conn.call(&Command::Watch).await, Ok(r) if r.ok) {
        return;
    }
    let _ = tx.send(Msg::Up(conn.hello.clone(), path.to_path_buf()));
    // Subscribed first, then the list: nothing requested in between is missed.
    if let Ok(mut side) = Conn::connect(path).await {
        if let Ok(r) = side.call(&Command::Pending).await {
            let _ = tx.send(Msg::Pending(pid, r.pending.unwrap_or_default()));
        }
    }
    let why = loop {
        match conn.next_event().await {
            Ok(Some(ev)) => {
                if tx.send(Msg::Event(pid, ev)).is_err() {
                    return;
                }
            }
            Ok(None) => break "stopped".to_string(),
            Err(e) => break e.to_string(),
        }
    };
    let _ = tx.send(Msg::Down(pid, path.to_path_buf(), why));
}

/// A request's story from the record, as preformatted sections.
fn detail(db: &Path, request_id: &str) -> Detail {
    let title = format!("Request {request_id}");
    let events = match Reader::open(db).and_then(|r| r.request(request_id)) {
        Ok(e) => e,
        Err(e) => {
            return Detail {
                title,
                sections: vec![("Not in the record".into(), e.to_string())],
            }
        }
    };
    if events.is_empty() {
        return Detail {
            title,
            sections: vec![(
                "Not in the record".into(),
                "This request is not in the record yet: recording is off, the proxy is older, \
                 or it is so busy that it indexes later (press Enter again in a moment)."
                    .into(),
            )],
        };
    }
    let mut sections = Vec::new();
    let mut decisions = String::new();
    for ev in &events {
        match ev.kind.as_str() {
            "request" => sections.push(("Request (as it left, masked)".into(), request_text(ev))),
            "response" => sections.push(("Answer".into(), answer_text(ev))),
            "tool_call" | "decision" | "error" => {
                decisions.push_str(&super::sessions::describe(ev));
                if let Some(r) = ev.data["reason"].as_str() {
                    decisions.push_str(&format!("\n    why: {r}"));
                }
                decisions.push('\n');
            }
            _ => {}
        }
    }
    if !decisions.is_empty() {
        sections.push(("Tool calls and decisions".into(), decisions));
    }
    Detail { title, sections }
}

fn pretty_body(ev: &StoredEvent) -> Option<String> {
    let body = ev.body.as_ref()?;
    Some(match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    })
}

fn request_text(ev: &StoredEvent) -> String {
    let d = &ev.data;
    let mut out = format!(
        "{} {}{}\n",
        d["method"].as_str().unwrap_or(""),
        d["host"].as_str().unwrap_or(""),
        d["path"].as_str().unwrap_or("")
    );
    if let Some(m) = d["masked"].as_object().filter(|m| !m.is_empty()) {
        let list: Vec<String> = m.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
        out.push_str(&format!("masked: {}\n", list.join(", ")));
    }
    if let Some(h) = d["headers"].as_object() {
        for (k, v) in h {
            out.push_str(&format!("{k}: {}\n", v.as_str().unwrap_or("")));
        }
    }
    if let Some(b) = pretty_body(ev) {
        out.push('\n');
        out.push_str(&b);
    }
    out
}

fn answer_text(ev: &StoredEvent) -> String {
    let mut out = format!("{}\n", super::sessions::describe(ev));
    let Some(body) = ev
        .body
        .as_ref()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
    else {
        return out;
    };
    if let Some(t) = body["text"].as_str().filter(|t| !t.is_empty()) {
        out.push('\n');
        out.push_str(t);
        out.push('\n');
    }
    for call in body["tool_calls"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\ntool_use {} {}\n{}\n",
            call["name"].as_str().unwrap_or(""),
            call["id"].as_str().unwrap_or(""),
            serde_json::to_string_pretty(&call["input"]).unwrap_or_default()
        ));
    }
    out
}
