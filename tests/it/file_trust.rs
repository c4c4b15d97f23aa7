//! No file trusted blindly: unsafe directories, keys, configs and stores
//! are refused with the command that fixes them; `sessions verify` knows
//! when the record is gone; secret query values stay out of the record.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Output, Stdio};

use serde_json::Value;

use crate::support::fake_anthropic::{FakeAnthropic, Script};
use crate::support::{Env, Proxy};

const KEY: &str = "sk-ant-agent-key-for-file-trust";

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn run(env: &Env, args: &[&str]) -> Output {
    env.cmd().args(args).stdin(Stdio::null()).output().unwrap()
}

/// Runs `hoopctl ARGS`, expects a refusal, returns stderr.
fn refused(env: &Env, args: &[&str]) -> String {
    let out = run(env, args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "hoopctl {args:?} should have refused; stdout: {}\nstderr: {err}",
        String::from_utf8_lossy(&out.stdout)
    );
    err
}

fn quoted(path: &Path) -> String {
    format!("'{}'", path.display())
}

#[test]
fn directories_open_to_others_are_refused_with_the_chmod_to_run() {
    for dir in ["config", "data", "run"] {
        let env = Env::new();
        let path = env.path(dir);
        std::fs::create_dir_all(&path).unwrap();
        set_mode(&path, 0o777);
        let err = refused(&env, &["sessions", "list"]);
        // (The runtime directory may not be readable by others either.)
        assert!(
            err.contains(&format!("{} is ", path.display()))
                && err.contains(&format!(
                    "writable by group/others (mode 0777); run: chmod 700 {}",
                    quoted(&path)
                )),
            "{dir}: {err}"
        );
        // Fixed as told, the same command works.
        set_mode(&path, 0o700);
        env.run_ok(&["sessions", "list"]);
    }
    // A runtime directory readable by others, or a link, is refused too.
    let env = Env::new();
    let run_dir = env.path("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    set_mode(&run_dir, 0o755);
    let err = refused(&env, &["sessions", "list"]);
    assert!(
        err.contains("is readable by group/others (mode 0755); run: chmod 700"),
        "{err}"
    );
    std::fs::remove_dir(&run_dir).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), &run_dir).unwrap();
    let err = refused(&env, &["sessions", "list"]);
    assert!(err.contains("is a symbolic link"), "{err}");
    assert!(
        err.contains(&format!("run: rm {}", quoted(&run_dir))),
        "{err}"
    );
}

#[test]
fn a_parent_others_could_swap_the_directories_in_is_refused_unless_sticky() {
    let env = Env::new();
    set_mode(env.dir.path(), 0o777);
    let err = refused(&env, &["sessions", "list"]);
    assert!(
        err.contains("is writable by group/others without the sticky bit (mode 0777)")
            && err.contains(&format!("run: chmod go-w {}", quoted(env.dir.path()))),
        "{err}"
    );
    // Sticky, like /tmp: fine.
    set_mode(env.dir.path(), 0o1777);
    env.run_ok(&["sessions", "list"]);
}

#[test]
fn a_directory_owned_by_someone_else_is_refused_with_the_chown_to_run() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: only root can give a directory away");
        return;
    }
    let env = Env::new();
    let data = env.path("data");
    std::fs::create_dir_all(&data).unwrap();
    set_mode(&data, 0o700);
    nix::unistd::chown(&data, Some(nix::unistd::Uid::from_raw(1001)), None).unwrap();
    let err = refused(&env, &["sessions", "list"]);
    assert!(
        err.contains(&format!(
            "{} is owned by uid 1001, not you (uid 0); run: chown 0 {}",
            data.display(),
            quoted(&data)
        )),
        "{err}"
    );
}

#[test]
fn a_ca_key_readable_by_others_or_a_link_is_refused() {
    let env = Env::new();
    env.run_ok(&["ca", "init"]);
    let key = env.path("data/ca/ca-key.pem");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    set_mode(&key, 0o644);
    let err = refused(&env, &["ca", "show"]);
    assert!(
        err.contains(&format!(
            "is readable by group/others (mode 0644); run: chmod 600 {}",
            quoted(&key)
        )),
        "{err}"
    );
    set_mode(&key, 0o600);
    env.run_ok(&["ca", "show"]);
    // A key swapped for a link (to a key elsewhere) is not followed.
    let elsewhere = tempfile::tempdir().unwrap();
    let other = elsewhere.path().join("ca-key.pem");
    std::fs::rename(&key, &other).unwrap();
    std::os::unix::fs::symlink(&other, &key).unwrap();
    let err = refused(&env, &["ca", "show"]);
    assert!(err.contains("is a symbolic link"), "{err}");
    // A certificate others can write is refused.
    std::fs::remove_file(&key).unwrap();
    std::fs::rename(&other, &key).unwrap();
    set_mode(&env.ca_cert(), 0o666);
    let err = refused(&env, &["ca", "path"]);
    assert!(
        err.contains("writable by group/others (mode 0666)"),
        "{err}"
    );
}

#[test]
fn a_config_holding_a_secret_readable_by_others_is_refused() {
    let env = Env::new();
    let config = env.path("config/config.toml");
    std::fs::create_dir_all(env.path("config")).unwrap();
    std::fs::write(&config, "[profiles.default]\nproxy_secret = \"abc123\"\n").unwrap();
    set_mode(&config, 0o644);
    let err = refused(&env, &["sessions", "list"]);
    assert!(
        err.contains(&format!(
            "{} is readable by group/others (mode 0644); run: chmod 600 {}",
            config.display(),
            quoted(&config)
        )),
        "{err}"
    );
    // Without a secret, readable is fine, writable by others is not.
    std::fs::write(&config, "[profiles.default]\nlisten = \"127.0.0.1:7\"\n").unwrap();
    set_mode(&config, 0o644);
    env.run_ok(&["sessions", "list"]);
    set_mode(&config, 0o666);
    let err = refused(&env, &["sessions", "list"]);
    assert!(
        err.contains("writable by group/others (mode 0666)"),
        "{err}"
    );
}

#[test]
fn an_audit_store_open_to_others_or_a_link_is_refused() {
    let env = Env::new();
    let db = env.path("data/audit.db");
    drop(hoopctl::audit::store::open(&db).unwrap());
    env.run_ok(&["sessions", "list"]);
    set_mode(&db, 0o666);
    let err = refused(&env, &["sessions", "list"]);
    assert!(
        err.contains(&format!(
            "{} is readable and writable by group/others (mode 0666); run: chmod 600 {}",
            db.display(),
            quoted(&db)
        )),
        "{err}"
    );
    set_mode(&db, 0o600);
    let elsewhere = tempfile::tempdir().unwrap();
    let moved = elsewhere.path().join("audit.db");
    std::fs::rename(&db, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &db).unwrap();
    let err = refused(&env, &["sessions", "list"]);
    assert!(err.contains("is a symbolic link"), "{err}");
}

/// `POST https://api.anthropic.com/v1/messages?QUERY` through the proxy.
fn post_with_query(proxy: &Proxy, query: &str) -> u16 {
    let body = r#"{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hello"}]}"#;
    let out = proxy
        .curl()
        .args(["-o", "/dev/null", "-w", "%{http_code}", "--max-time", "40"])
        .args(["-H", "content-type: application/json"])
        .args(["-H", "anthropic-version: 2023-06-01"])
        .args(["-H", &format!("x-api-key: {KEY}")])
        .args(["--data-binary", body])
        .arg(format!("https://api.anthropic.com/v1/messages?{query}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Records one run of one request (with `query`) through a foreground proxy.
fn record_a_run(env: &Env, query: &str) {
    let fake = FakeAnthropic::start(Script::default()).unwrap();
    let mut proxy = env.start_proxy(&["--upstream", &fake.url()]);
    assert_eq!(post_with_query(&proxy, query), 200);
    let (status, _) = proxy.stop();
    assert!(status.success(), "{status:?}");
}

/// `hoopctl --output json sessions verify`: (exit code, stdout, stderr).
fn verify(env: &Env) -> (i32, String, String) {
    let out = run(env, &["--output", "json", "sessions", "verify"]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sessions_verify_tells_nothing_recorded_from_a_record_that_is_gone() {
    // Nothing recorded yet: exit 0, and it says so.
    let env = Env::new();
    let text = env.run_ok(&["sessions", "verify"]);
    assert!(text.contains("Nothing is recorded yet"), "{text}");
    let (code, out, _) = verify(&env);
    assert_eq!((code, out.trim()), (0, "[]"));

    record_a_run(&env, "beta=true");
    let marker: Value =
        serde_json::from_slice(&std::fs::read(env.path("data/audit.marker")).unwrap()).unwrap();
    assert_eq!(marker["runs"], 1, "{marker}");
    assert!(marker["event_id"].as_i64().unwrap() >= 2, "{marker}");
    let (code, out, err) = verify(&env);
    assert_eq!(code, 0, "{out}{err}");
    let db = env.path("data/audit.db");

    // Emptied: non-zero, in text and JSON.
    let saved = tempfile::tempdir().unwrap();
    for f in ["audit.db", "audit.db-wal", "audit.db-shm"] {
        let from = env.path("data").join(f);
        if from.exists() {
            std::fs::copy(&from, saved.path().join(f)).unwrap();
        }
    }
    std::fs::File::options()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(0)
        .unwrap();
    let _ = std::fs::remove_file(env.path("data/audit.db-wal"));
    let _ = std::fs::remove_file(env.path("data/audit.db-shm"));
    let err = refused(&env, &["sessions", "verify"]);
    assert!(err.contains("the record is gone"), "{err}");
    assert!(err.contains("is empty (0 bytes)"), "{err}");
    let (code, _, err) = verify(&env);
    assert_ne!(code, 0);
    let json: Value = serde_json::from_str(err.trim()).unwrap();
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("the record is gone"),
        "{json}"
    );

    // Deleted: non-zero.
    std::fs::remove_file(&db).unwrap();
    let err = refused(&env, &["sessions", "verify"]);
    assert!(
        err.contains("the record is gone") && err.contains("is missing"),
        "{err}"
    );

    // Replaced by a fresh, empty store: behind the marker, non-zero.
    drop(hoopctl::audit::store::open(&db).unwrap());
    let err = refused(&env, &["sessions", "verify"]);
    assert!(err.contains("ends at event #0"), "{err}");

    // Restored from the copy: verified again.
    std::fs::remove_file(&db).unwrap();
    for f in ["audit.db", "audit.db-wal", "audit.db-shm"] {
        let from = saved.path().join(f);
        if from.exists() {
            std::fs::copy(&from, env.path("data").join(f)).unwrap();
        }
    }
    let (code, out, err) = verify(&env);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn secret_query_values_never_reach_the_record() {
    let env = Env::new();
    let secret = "qs-secret-value-7f3a9c";
    record_a_run(
        &env,
        &format!("beta=true&token={secret}&api_key={secret}x&code={secret}y"),
    );
    // Not in any file of the data directory (store, WAL, journals).
    let mut files = vec![env.path("data")];
    let mut seen = 0;
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if let Ok(bytes) = std::fs::read(&p) {
            seen += 1;
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds the secret",
                p.display()
            );
        }
    }
    assert!(seen > 0);
    // What is recorded is the path with the values redacted.
    let export = env.run_ok(&["sessions", "export", "--format", "jsonl"]);
    assert!(
        export
            .contains("/v1/messages?beta=true&token=(redacted)&api_key=(redacted)&code=(redacted)"),
        "{export}"
    );
    assert!(!export.contains(secret));
}

#[test]
fn journals_in_a_directory_others_can_write_are_not_read() {
    let env = Env::new();
    let db = env.path("data/audit.db");
    drop(hoopctl::audit::store::open(&db).unwrap());
    let journals = env.path("data/audit.journal");
    std::fs::create_dir_all(&journals).unwrap();
    set_mode(&journals, 0o777);
    // Reading the store goes on without them, and says so.
    let out = run(&env, &["sessions", "list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "warning: {} is writable by group/others (mode 0777); run: chmod 700",
            journals.display()
        )),
        "{err}"
    );
    // A proxy does not record into it (with `audit.fail_closed` unset it
    // runs unrecorded and says so).
    let out = run(
        &env,
        &[
            "connect",
            "claude-code",
            "--direct",
            "--listen",
            "127.0.0.1:0",
            "--",
            "true",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{} is writable by group/others (mode 0777)",
            journals.display()
        )) && err.contains("this run is not recorded"),
        "{err}"
    );
}

/// A policy file others can change is a policy others can loosen: refused
/// (the file, or a directory above it others can write without the
/// sticky bit), with the command that fixes it; readable is fine, and a
/// link the user made is followed.
#[test]
fn a_policy_file_others_can_change_is_refused() {
    let env = Env::new();
    let dir = env.path("policies");
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        "[[guardrails.rules]]\nname = \"no-ls\"\ntool = \"Bash\"\nfield = \"command\"\npattern = '^ls'\naction = \"block\"\nreason = \"no listing\"\n",
    )
    .unwrap();
    let policy_arg = policy.to_str().unwrap();
    let check = [
        "policy",
        "check",
        "--tool",
        "Bash",
        "--input",
        r#"{"command":"ls"}"#,
    ];
    fn with<'a>(check: &[&'a str], p: &'a str) -> Vec<&'a str> {
        let mut args = check.to_vec();
        args.extend(["--policy", p]);
        args
    }
    set_mode(&policy, 0o666);
    let err = refused(&env, &with(&check, policy_arg));
    assert!(
        err.contains("writable by group/others (mode 0666)")
            && err.contains(&format!("run: chmod go-w {}", quoted(&policy))),
        "{err}"
    );
    set_mode(&policy, 0o644);
    let out = env.run_ok(&with(&check, policy_arg));
    assert!(out.contains("no-ls"), "{out}");
    // A directory above it that others may write to (they could swap the
    // file) is refused; with the sticky bit (like /tmp) it is fine.
    set_mode(&dir, 0o777);
    let err = refused(&env, &with(&check, policy_arg));
    assert!(
        err.contains(&format!("{} (which holds", dir.display())) && err.contains("chmod go-w"),
        "{err}"
    );
    set_mode(&dir, 0o1777);
    env.run_ok(&with(&check, policy_arg));
    set_mode(&dir, 0o755);
    // A link is followed; the file it leads to is what is checked.
    let link = env.path("linked-policy.toml");
    std::os::unix::fs::symlink(&policy, &link).unwrap();
    env.run_ok(&with(&check, link.to_str().unwrap()));
    set_mode(&policy, 0o664);
    let err = refused(&env, &with(&check, link.to_str().unwrap()));
    assert!(
        err.contains(&format!("chmod go-w {}", quoted(&policy))),
        "{err}"
    );
    // A missing file is still just missing.
    let err = refused(&env, &with(&check, env.path("nope.toml").to_str().unwrap()));
    assert!(err.contains("could not read policy file"), "{err}");
}
