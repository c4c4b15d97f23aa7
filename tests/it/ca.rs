//! The local CA: files, `ca` commands, and name constraints that a
//! standard verifier (openssl) enforces.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::Arc;

use hoopctl::ca::{leaf::LeafCache, Ca};
use serde_json::Value;

use crate::support::{require, Env};

fn pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

fn openssl_verify(
    ca: &std::path::Path,
    leaf_pem: &str,
    dir: &std::path::Path,
    name: &str,
) -> (bool, String) {
    let leaf = dir.join(format!("{name}.pem"));
    std::fs::write(&leaf, leaf_pem).unwrap();
    let out = Command::new("openssl")
        .args(["verify", "-purpose", "sslserver", "-CAfile"])
        .arg(ca)
        .arg(&leaf)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn openssl_rejects_a_leaf_outside_the_name_constraints() {
    require("openssl");
    let env = Env::new();
    env.run_ok(&["ca", "init"]);
    let ca = Arc::new(Ca::load(&env.path("data/ca")).unwrap());
    let leaves = LeafCache::new(
        ca.clone(),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .unwrap();

    // Inside the constraints: verifies.
    for host in ["api.anthropic.com", "localhost"] {
        let (ok, out) = openssl_verify(
            ca.cert_path(),
            &pem(&leaves.mint_der(host).unwrap()),
            env.dir.path(),
            host,
        );
        assert!(ok, "{host}: {out}");
    }
    // The CA key signs a leaf for another site, as a thief would: rejected.
    for host in ["example.com", "evilanthropic.com", "10.0.0.1"] {
        let (ok, out) = openssl_verify(
            ca.cert_path(),
            &pem(&leaves.mint_der(host).unwrap()),
            env.dir.path(),
            host,
        );
        assert!(!ok, "{host} must be rejected: {out}");
        assert!(
            out.contains("subtree violation") || out.contains("name constraint"),
            "{host}: {out}"
        );
    }
}

#[test]
fn ca_commands_report_and_protect_the_key() {
    let env = Env::new();
    let created: Value =
        serde_json::from_str(&env.run_ok(&["--output", "json", "ca", "init"])).unwrap();
    let key = env.path("data/ca/ca-key.pem");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        created["permitted_dns"],
        serde_json::json!(["anthropic.com", "localhost"])
    );
    assert_eq!(
        created["permitted_ip"],
        serde_json::json!(["127.0.0.1/32", "::1/128"])
    );

    // init twice is refused; show/path agree with init.
    let again = env.cmd().args(["ca", "init"]).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("ca rotate"));
    let shown: Value =
        serde_json::from_str(&env.run_ok(&["--output", "json", "ca", "show"])).unwrap();
    assert_eq!(shown["sha256_fingerprint"], created["sha256_fingerprint"]);
    let text = env.run_ok(&["ca", "show"]);
    for needle in [
        "Subject:",
        "SHA-256:",
        "anthropic.com",
        "127.0.0.1/32",
        "Valid:",
    ] {
        assert!(text.contains(needle), "{needle} missing in\n{text}");
    }
    assert_eq!(
        env.run_ok(&["ca", "path"]).trim(),
        env.ca_cert().display().to_string()
    );

    // openssl agrees with our fingerprint.
    require("openssl");
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(env.ca_cert())
        .output()
        .unwrap();
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(
        line.contains(created["sha256_fingerprint"].as_str().unwrap()),
        "{line}"
    );

    // rotate replaces the key and the certificate.
    let rotated: Value =
        serde_json::from_str(&env.run_ok(&["--output", "json", "ca", "rotate"])).unwrap();
    assert_ne!(rotated["sha256_fingerprint"], created["sha256_fingerprint"]);
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn ca_show_without_a_ca_says_what_to_do() {
    let env = Env::new();
    let out = env.cmd().args(["ca", "show"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("hoopctl ca init"));
}

#[test]
fn a_policy_intercepting_an_uncovered_host_asks_for_rotation() {
    let env = Env::new();
    env.run_ok(&["ca", "init"]);
    let policy = env.path("policy.toml");
    std::fs::write(
        &policy,
        "[egress]\nintercept = [\"api.anthropic.com\", \"llm.example.org\"]\n",
    )
    .unwrap();
    let out = env
        .connect_cmd()
        .arg("--policy")
        .arg(&policy)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("llm.example.org") && err.contains("ca rotate"),
        "{err}"
    );
    // After rotating with that policy in the profile, the new CA covers it.
    std::fs::create_dir_all(env.path("config")).unwrap();
    std::fs::write(
        env.path("config/config.toml"),
        format!(
            "[profiles.default]\npolicy = {:?}\n",
            policy.display().to_string()
        ),
    )
    .unwrap();
    let rotated: Value =
        serde_json::from_str(&env.run_ok(&["--output", "json", "ca", "rotate"])).unwrap();
    assert_eq!(
        rotated["permitted_dns"],
        serde_json::json!(["anthropic.com", "example.org", "localhost"])
    );
    env.run_ok(&[
        "connect",
        "claude-code",
        "--direct",
        "--listen",
        "127.0.0.1:0",
        "--",
        "true",
    ]);
}
