//! `lookout render` on the sample payloads in `examples/` prints exactly the golden
//! output: every channel kind, firing and resolved, Chinese text, sizes and parts.

use std::process::Command;

fn render(payload: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_lookout"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "--config",
            "examples/channels.yaml",
            "render",
            "--receiver",
            "critical",
            payload,
        ])
        .envs([
            ("DINGTALK_TOKEN", "example-token"),
            ("DINGTALK_SECRET", "SECexample"),
            ("WECOM_KEY", "example-key"),
            ("ALIYUN_AK", "example-ak"),
            ("ALIYUN_SK", "example-sk"),
            ("TENCENT_SECRET_ID", "example-id"),
            ("TENCENT_SECRET_KEY", "example-key"),
        ])
        .output()
        .expect("run lookout render");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("render prints UTF-8")
}

#[test]
fn firing_payload_renders_the_golden_output() {
    insta::assert_snapshot!(render("examples/payloads/firing.json"));
}

#[test]
fn resolved_payload_renders_the_golden_output() {
    let out = render("examples/payloads/resolved.json");
    assert!(
        out.contains("== oncall-sms (aliyun_sms): nothing to send"),
        "SMS skips resolved by default"
    );
    insta::assert_snapshot!(out);
}

#[test]
fn secrets_are_not_printed() {
    for payload in [
        "examples/payloads/firing.json",
        "examples/payloads/resolved.json",
    ] {
        let out = render(payload);
        for secret in ["example-token", "SECexample", "example-key", "example-sk"] {
            assert!(!out.contains(secret), "{secret} printed by render");
        }
    }
}
