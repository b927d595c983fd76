//! `lookout render` on the sample payloads in `examples/` prints exactly the golden
//! output: every channel kind, firing and resolved, Chinese text, sizes and parts — the
//! `critical` receiver's messages and the `voice` receiver's calls.

use std::process::Command;

fn render(payload: &str) -> String {
    render_for("critical", payload)
}

fn render_for(receiver: &str, payload: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_lookout"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "--config",
            "examples/channels.yaml",
            "render",
            "--receiver",
            receiver,
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
fn voice_calls_render_their_spoken_variables() {
    let out = render_for("voice", "examples/payloads/firing.json");
    assert!(
        out.contains("== oncall-voice (aliyun_voice): 1 message(s)"),
        "{out}"
    );
    assert!(out.contains("TtsParam: {"), "{out}");
    insta::assert_snapshot!(out);
    let out = render_for("voice", "examples/payloads/resolved.json");
    for channel in [
        "oncall-voice (aliyun_voice)",
        "oncall-voice-tc (tencent_voice)",
    ] {
        assert!(
            out.contains(&format!("== {channel}: nothing to send")),
            "no call for a resolved alert by default: {out}"
        );
    }
}

#[test]
fn secrets_are_not_printed() {
    for receiver in ["critical", "voice"] {
        for payload in [
            "examples/payloads/firing.json",
            "examples/payloads/resolved.json",
        ] {
            let out = render_for(receiver, payload);
            for secret in [
                "example-token",
                "SECexample",
                "example-key",
                "example-sk",
                "example-ak",
                "example-id",
            ] {
                assert!(!out.contains(secret), "{secret} printed by render");
            }
        }
    }
}
