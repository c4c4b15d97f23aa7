//! `hoopctl demo`: a self-contained, offline tour. The real proxy
//! ([`crate::supervisor::start`]) with the real policy engine runs against a
//! scripted Anthropic API built into the binary ([`upstream`]), and a
//! scripted agent ([`agent`]) talks to it through the proxy the way Claude
//! Code does. The story ([`script`]): a prompt with secrets is masked, a
//! destructive command is blocked, a force-push is held until the person
//! answers, and the record is read back and verified.
//!
//! Everything lives in a fresh temporary directory (its own CA, control
//! socket and audit store), removed at the end; nothing but 127.0.0.1 is
//! contacted.
//!
//! Owns: the tour's order and what each step reports. Must not: print or
//! read the terminal (the CLI does, through [`Narrator`]).

pub mod agent;
pub mod script;
pub mod upstream;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::control::client::Conn;
use crate::control::protocol::Command;
use crate::events::Event;
use crate::policy::Policy;
use crate::proxy::upstream::Origin;
use crate::proxy::Timeouts;
use crate::secret::Secret;
use crate::supervisor::{self, Options};

/// How long the tour waits for something the proxy reports at once.
const STEP: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not create the demo's temporary directory {path}: {source}")]
    TempDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not generate a random value")]
    Random,
    #[error("the demo's scripted API could not start: {0}")]
    Upstream(std::io::Error),
    #[error("the demo policy is invalid: {0}")]
    Policy(#[from] crate::policy::Error),
    #[error("the demo's upstream address is invalid: {0}")]
    Origin(#[from] crate::proxy::upstream::Error),
    #[error("the demo proxy could not start: {0}")]
    Start(#[from] supervisor::Error),
    #[error("the demo's control socket: {0}")]
    Control(#[from] crate::control::client::Error),
    #[error(transparent)]
    Agent(#[from] agent::Error),
    #[error("the demo's record: {0}")]
    Record(#[from] crate::audit::store::Error),
    #[error("the demo went off script: {0}")]
    OffScript(String),
}

/// Where the demo runs.
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    /// The proxy's loopback address.
    pub proxy: SocketAddr,
    /// The scripted API's URL (`http://127.0.0.1:PORT`).
    pub upstream: String,
    /// The temporary directory (removed at the end).
    #[serde(skip)]
    pub dir: PathBuf,
}

/// Step 1: what the person typed and what the API received.
#[derive(Debug, Clone, Serialize)]
pub struct Masking {
    pub typed: String,
    pub api_received: String,
    /// Findings per detector, as the proxy reported them.
    pub findings: BTreeMap<String, usize>,
    /// Raw values of the prompt that reached the API anyway (none, unless broken).
    pub leaked: Vec<String>,
}

/// Step 2: the destructive command and what the agent got instead.
#[derive(Debug, Clone, Serialize)]
pub struct Guardrail {
    pub command: String,
    /// `blocked` (or whatever the proxy decided, if not).
    pub decision: String,
    pub rule: Option<String>,
    pub reason: Option<String>,
    /// Whether the tool call still reached the agent (it must not).
    pub reached_agent: bool,
    /// The texts the agent received in that answer.
    pub agent_received: Vec<String>,
}

/// Step 3, before the answer: the held call.
#[derive(Debug, Clone, Serialize)]
pub struct Held {
    /// What the person said next.
    pub follow_up: String,
    pub approval_id: String,
    pub command: String,
    pub rule: String,
    pub reason: String,
    /// Seconds before it is denied unanswered.
    pub timeout_secs: u64,
}

/// How the held call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Approved,
    Denied,
    TimedOut,
}

/// Step 3, after the answer.
#[derive(Debug, Clone, Serialize)]
pub struct Approval {
    pub command: String,
    pub rule: String,
    pub outcome: Outcome,
    /// Whether the tool call reached the agent.
    pub reached_agent: bool,
    /// The texts the agent received in the held answer.
    pub agent_received: Vec<String>,
    /// What the agent reported back when it "ran" the call.
    pub tool_result: Option<String>,
    /// The model's last answer, when the turn went on.
    pub final_text: Option<String>,
}

/// Step 4: the record.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub events: i64,
    /// Recorded sessions (the agent's, and one for its CONNECT tunnel).
    pub sessions: usize,
    /// Events per kind.
    pub kinds: BTreeMap<String, usize>,
    /// The recorded tool-call events, in order.
    pub tool_calls: Vec<RecordedCall>,
    /// Every session's hash chain verified.
    pub chain_ok: bool,
}

/// One recorded `tool_call` event.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedCall {
    pub tool: String,
    pub summary: String,
    /// `blocked`, `waiting`, `approved by NAME`, `denied by NAME`, ...
    pub decision: String,
    pub rule: Option<String>,
}

/// The whole tour, for `--output json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub setup: Setup,
    pub masking: Masking,
    pub guardrail: Guardrail,
    pub approval: Approval,
    pub record: Record,
}

/// Tells the person what happens, step by step, and asks the one question.
pub trait Narrator {
    fn setup(&mut self, setup: &Setup);
    fn masking(&mut self, step: &Masking);
    fn guardrail(&mut self, step: &Guardrail);
    /// The call is held: show it and ask. The answer (true = approve)
    /// arrives on the receiver; a dropped sender counts as deny. If the
    /// review times out first, the answer is not waited for.
    fn held(&mut self, held: &Held) -> oneshot::Receiver<bool>;
    fn approval(&mut self, step: &Approval);
    fn record(&mut self, step: &Record);
}

/// The temporary directory; removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn create() -> Result<Self, Error> {
        use std::os::unix::fs::DirBuilderExt;
        let name = format!(
            "hoopctl-demo-{}",
            crate::secret::random_hex(4).map_err(|_| Error::Random)?
        );
        let path = std::env::temp_dir().join(name);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|source| Error::TempDir {
                path: path.clone(),
                source,
            })?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Cancels the proxy when the tour ends, however it ends.
struct StopOnDrop(CancellationToken);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// The control socket's events, kept so a step can look back.
struct Events {
    rx: mpsc::UnboundedReceiver<Event>,
    seen: Vec<Event>,
}

impl Events {
    /// Streams the events of the proxy at `socket` (subscribed before any traffic).
    async fn watch(socket: &Path) -> Result<Self, Error> {
        let mut conn = Conn::connect(socket).await?;
        let reply = conn.call(&Command::Watch).await?;
        if !reply.ok {
            return Err(Error::OffScript(format!(
                "the control socket refused to stream events: {}",
                reply.error.unwrap_or_default()
            )));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(ev)) = conn.next_event().await {
                if tx.send(ev).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            rx,
            seen: Vec::new(),
        })
    }

    /// The first event (seen or arriving within `within`) that `pred` accepts.
    async fn wait(&mut self, within: Duration, pred: impl Fn(&Event) -> bool) -> Option<Event> {
        if let Some(e) = self.seen.iter().find(|e| pred(e)) {
            return Some(e.clone());
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let ev = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .ok()??;
            self.seen.push(ev.clone());
            if pred(&ev) {
                return Some(ev);
            }
        }
    }
}

/// The policy of the demo: the built-in one plus the review rule.
pub fn policy() -> Result<Policy, Error> {
    Ok(Policy::parse(
        &script::policy_toml(),
        Path::new("demo policy"),
    )?)
}

/// Runs the tour. Every step is told to `narrator` as it completes.
pub async fn run(narrator: &mut impl Narrator) -> Result<Report, Error> {
    let dir = TempDir::create()?;
    let api = upstream::Upstream::start().await.map_err(Error::Upstream)?;
    let audit_db = dir.0.join("audit.db");
    let options = Options {
        profile: "demo".into(),
        // The directory itself: a short path keeps the socket under the
        // platform's limit.
        runtime_dir: dir.0.clone(),
        policy: policy()?,
        ca_dir: dir.0.join("ca"),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        secret: Secret::random().map_err(|_| Error::Random)?,
        upstream: Some(Origin::parse(&api.url())?),
        extra_cas: Vec::new(),
        gateway: None,
        placeholder_key: false,
        timeouts: Timeouts {
            connect: Duration::from_secs(5),
            header_read: Duration::from_secs(30),
            drain: Duration::from_secs(3),
            ..Timeouts::default()
        },
        limits: crate::proxy::Limits::default(),
        audit_db: audit_db.clone(),
        user: None,
    };
    let started = supervisor::start(options).await?;
    let env = started.env.clone();
    let stop = StopOnDrop(CancellationToken::new());
    let proxy = tokio::spawn(supervisor::run_until(started, stop.0.clone()));
    let socket = crate::control::server::socket_path(&dir.0, std::process::id());
    let mut events = Events::watch(&socket).await?;
    let mut control = Conn::connect(&socket).await?;
    let setup = Setup {
        proxy: env.listen,
        upstream: api.url(),
        dir: dir.0.clone(),
    };
    narrator.setup(&setup);

    // 1. Masking.
    let mut agent = agent::Agent::connect(&env).await?;
    let first = agent.turn(Value::String(script::PROMPT.into())).await?;
    let received = api
        .received()
        .into_iter()
        .find(|r| r.path == "/v1/messages")
        .ok_or_else(|| Error::OffScript("the API received no request".into()))?;
    let api_received = first_user_text(&received.body).unwrap_or_default();
    let findings = match events
        .wait(
            STEP,
            |e| matches!(e, Event::Request { path, .. } if path.starts_with("/v1/messages")),
        )
        .await
    {
        Some(Event::Request { masked, .. }) => masked,
        _ => BTreeMap::new(),
    };
    let masking = Masking {
        typed: script::PROMPT.into(),
        leaked: script::SECRETS
            .iter()
            .filter(|s| received.body.to_string().contains(*s))
            .map(|s| s.to_string())
            .collect(),
        api_received,
        findings,
    };
    narrator.masking(&masking);

    // 2. Guardrails.
    let tool_call = events
        .wait(
            STEP,
            |e| matches!(e, Event::ToolCall { summary, .. } if summary == script::DESTRUCTIVE),
        )
        .await;
    let (decision, rule, reason) = match tool_call {
        Some(Event::ToolCall {
            decision,
            rule,
            reason,
            ..
        }) => (decision, rule, reason),
        _ => ("unknown".to_string(), None, None),
    };
    let guardrail = Guardrail {
        command: script::DESTRUCTIVE.into(),
        decision,
        rule,
        reason,
        reached_agent: first
            .tool_uses()
            .iter()
            .any(|(_, _, input)| input["command"] == script::DESTRUCTIVE),
        agent_received: first.texts(),
    };
    narrator.guardrail(&guardrail);

    // 3. Approval: the follow-up's answer is held until the person decides.
    let turn = tokio::spawn(async move {
        let answer = agent.turn(Value::String(script::FOLLOW_UP.into())).await;
        (agent, answer)
    });
    let requested = events
        .wait(STEP, |e| matches!(e, Event::ApprovalRequested { .. }))
        .await;
    let Some(Event::ApprovalRequested { approval }) = requested else {
        turn.abort();
        return Err(Error::OffScript(format!(
            "`{}` was not held for approval",
            script::FORCE_PUSH
        )));
    };
    let held = Held {
        follow_up: script::FOLLOW_UP.into(),
        approval_id: approval.id.clone(),
        command: approval.summary.clone(),
        rule: approval.rule.clone(),
        reason: approval.reason.clone(),
        timeout_secs: u64::try_from(approval.expires_at - approval.requested_at).unwrap_or(0),
    };
    let answer = narrator.held(&held);
    let id = held.approval_id.clone();
    let is_decided = |e: &Event| matches!(e, Event::ApprovalDecided { id: d, .. } if *d == id);
    let wait_for_person = Duration::from_secs(held.timeout_secs + 5);
    let approve = tokio::select! {
        a = answer => Some(a.unwrap_or(false)),
        _ = events.wait(wait_for_person, is_decided) => None,
    };
    if let Some(approve) = approve {
        let cmd = if approve {
            Command::Approve { id: id.clone() }
        } else {
            Command::Deny {
                id: id.clone(),
                reason: None,
            }
        };
        // Not ok: the timeout decided first; the event below says so.
        let _ = control.call(&cmd).await?;
    }
    let outcome = match events.wait(STEP, is_decided).await {
        Some(Event::ApprovalDecided { approved: true, .. }) => Outcome::Approved,
        Some(Event::ApprovalDecided { by, .. }) if by == "timeout" => Outcome::TimedOut,
        Some(_) => Outcome::Denied,
        None => return Err(Error::OffScript("the held call was never decided".into())),
    };
    let (mut agent, held_answer) = tokio::time::timeout(STEP, turn)
        .await
        .map_err(|_| Error::OffScript("the held answer did not arrive".into()))?
        .map_err(|e| Error::OffScript(format!("the demo agent stopped: {e}")))?;
    let held_answer = held_answer?;
    let pushed = held_answer
        .tool_uses()
        .into_iter()
        .find(|(_, _, input)| input["command"] == script::FORCE_PUSH);
    let (tool_result, final_text) = match &pushed {
        Some((tool_use_id, _, _)) => {
            let result = json!([{
                "type": "tool_result",
                "tool_use_id": tool_use_id,
                "content": script::TOOL_OUTPUT,
            }]);
            let last = agent.turn(result).await?;
            (
                Some(script::TOOL_OUTPUT.to_string()),
                Some(last.texts().join("\n")),
            )
        }
        None => (None, None),
    };
    let approval = Approval {
        command: held.command.clone(),
        rule: held.rule.clone(),
        outcome,
        reached_agent: pushed.is_some(),
        agent_received: held_answer.texts(),
        tool_result,
        final_text,
    };
    narrator.approval(&approval);

    // 4. The record: stop the proxy (it flushes the store), then read it back.
    drop(agent);
    drop(control);
    drop(stop);
    let _ = tokio::time::timeout(STEP, proxy).await;
    let record = read_record(&audit_db)?;
    narrator.record(&record);
    drop(api);
    drop(dir);
    Ok(Report {
        setup,
        masking,
        guardrail,
        approval,
        record,
    })
}

/// The text of the first user message of a Messages body.
fn first_user_text(body: &Value) -> Option<String> {
    let first = body.get("messages")?.as_array()?.first()?;
    match first.get("content")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(blocks) => Some(
            blocks
                .iter()
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        _ => None,
    }
}

fn read_record(audit_db: &Path) -> Result<Record, Error> {
    let reader = crate::audit::store::Reader::open(audit_db)?;
    let sessions = reader.sessions(None, 1000)?;
    let mut kinds = BTreeMap::new();
    let mut all = Vec::new();
    let mut events = 0;
    for s in &sessions {
        events += s.events;
        all.extend(reader.events(&s.id)?);
    }
    all.sort_by_key(|e| e.id);
    let mut tool_calls = Vec::new();
    for e in all {
        if e.kind == "tool_call" {
            let text = |k: &str| e.data.get(k).and_then(Value::as_str).map(str::to_string);
            tool_calls.push(RecordedCall {
                tool: text("tool").unwrap_or_default(),
                summary: text("summary").unwrap_or_default(),
                decision: text("decision").unwrap_or_default(),
                rule: text("rule"),
            });
        }
        *kinds.entry(e.kind).or_insert(0) += 1;
    }
    let verdicts = reader.verify(None)?;
    Ok(Record {
        events,
        sessions: sessions.len(),
        kinds,
        tool_calls,
        chain_ok: !verdicts.is_empty() && verdicts.iter().all(|v| v.ok),
    })
}
