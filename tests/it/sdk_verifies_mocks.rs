//! The providers' official SDKs agree with the verifying mocks: Alibaba Cloud's
//! `alibabacloud-dysmsapi20170525` and `alibabacloud-dyvmsapi20170525`, Tencent Cloud's
//! `tencentcloud-sdk-python-sms` and `tencentcloud-sdk-python-vms`, pointed at the running
//! mock over plain HTTP, are accepted — so the mocks' signature
//! checks are the providers' and not just lookout's — and a wrong secret is refused with
//! the provider's code.
//!
//! The SDKs live in a venv at `target/pysdk`, made by `.ci/python-sdks` (run here once
//! when missing). Without it the tests skip with a note, except in CI, where they fail.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::mocks::{AliyunSmsMock, AliyunVoiceMock, TencentSmsMock, TencentVoiceMock};
use crate::support::python::python;

const ALIYUN_AK: &str = "LTAI5tSdkTestKeyId";
const ALIYUN_SECRET: &str = "sdk-test-secret";
const TENCENT_ID: &str = "AKIDsdkTestSecretId0123456789";
const TENCENT_KEY: &str = "sdk-test-secret-key";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// What one run of an SDK script came to.
#[derive(Debug)]
struct Run {
    exit: Option<i32>,
    /// The JSON line the script printed last (`Null` if none).
    result: Value,
    output: String,
}

fn run(python: &Path, script: &str, args: &[String]) -> Run {
    let output = Command::new(python)
        .arg(root().join("tests/sdk").join(script))
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .output()
        .expect("the venv's python runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let result = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or(Value::Null);
    Run {
        exit: output.status.code(),
        result,
        output: format!(
            "stdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// Runs `script` and expects the SDK to fail with the provider's `code` (exit 1).
fn assert_refused(python: &Path, script: &str, args: &[String], code: &str) {
    let refused = run(python, script, args);
    assert_eq!(refused.exit, Some(1), "{}", refused.output);
    assert_eq!(refused.result["code"], code, "{}", refused.output);
}

fn aliyun_args(mock: &AliyunSmsMock, secret: &str, phone: &str) -> Vec<String> {
    [
        "--endpoint",
        &mock.endpoint(),
        "--access-key-id",
        ALIYUN_AK,
        "--access-key-secret",
        secret,
        "--phone",
        phone,
        "--sign-name",
        "监控中心",
        "--template-code",
        "SMS_123456789",
        "--template-param",
        r#"{"alert":"磁盘 使用率 95%","host":"db-1 (主)"}"#,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

#[test]
fn aliyun_sdk_is_accepted_and_a_wrong_secret_refused() {
    let Some(python) = python() else { return };
    let mock = AliyunSmsMock::start(ALIYUN_AK, ALIYUN_SECRET);

    let ok = run(
        &python,
        "aliyun_send.py",
        &aliyun_args(&mock, ALIYUN_SECRET, "13800138000"),
    );
    assert_eq!(ok.exit, Some(0), "{}", ok.output);
    assert_eq!(ok.result["ok"], true, "{}", ok.output);
    assert_eq!(ok.result["body"]["Code"], "OK");
    assert!(
        ok.result["body"]["BizId"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    println!("aliyun SDK: {}", ok.result);

    let sent = mock.sent();
    assert_eq!(sent.len(), 1, "{:?}", mock.requests());
    assert_eq!(sent[0].phone_numbers, vec!["13800138000".to_owned()]);
    assert_eq!(sent[0].sign_name, "监控中心");
    assert_eq!(sent[0].template_code, "SMS_123456789");
    assert_eq!(
        sent[0].template_param,
        Some(json!({"alert": "磁盘 使用率 95%", "host": "db-1 (主)"}))
    );
    let request = mock.last().expect("logged");
    assert_eq!(request.header("x-acs-action"), Some("SendSms"));
    assert_eq!(request.header("x-acs-version"), Some("2017-05-25"));
    let authorization = request.header("authorization").unwrap_or_default();
    assert!(
        authorization.starts_with("ACS3-HMAC-SHA256 Credential=LTAI5tSdkTestKeyId,SignedHeaders="),
        "{authorization}"
    );

    // Wrong secret: the mock recomputes a different signature.
    assert_refused(
        &python,
        "aliyun_send.py",
        &aliyun_args(&mock, "wrong-secret", "13900139000"),
        "SignatureDoesNotMatch",
    );
    assert_eq!(
        mock.last().and_then(|r| r.code).as_deref(),
        Some("SignatureDoesNotMatch")
    );

    // The same number again within a minute: the SDK sees the business code.
    assert_refused(
        &python,
        "aliyun_send.py",
        &aliyun_args(&mock, ALIYUN_SECRET, "13800138000"),
        "isv.BUSINESS_LIMIT_CONTROL",
    );
    assert_eq!(mock.accepted().len(), 1);
}

fn tencent_args(
    mock: &TencentSmsMock,
    secret_id: &str,
    secret_key: &str,
    phone: &str,
) -> Vec<String> {
    [
        "--endpoint",
        &mock.endpoint(),
        "--secret-id",
        secret_id,
        "--secret-key",
        secret_key,
        "--phone",
        phone,
        "--sdk-app-id",
        "1400006666",
        "--sign-name",
        "监控中心",
        "--template-id",
        "1110",
        "--param",
        "磁盘 使用率",
        "--param",
        "95%",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

#[test]
fn tencent_sdk_is_accepted_and_a_wrong_secret_refused() {
    let Some(python) = python() else { return };
    let mock = TencentSmsMock::start(TENCENT_ID, TENCENT_KEY);

    let ok = run(
        &python,
        "tencent_send.py",
        &tencent_args(&mock, TENCENT_ID, TENCENT_KEY, "+8613800138000"),
    );
    assert_eq!(ok.exit, Some(0), "{}", ok.output);
    assert_eq!(
        ok.result["body"]["SendStatusSet"][0]["Code"], "Ok",
        "{}",
        ok.output
    );
    println!("tencent SDK: {}", ok.result);

    let sent = mock.sent();
    assert_eq!(sent.len(), 1, "{:?}", mock.requests());
    assert_eq!(sent[0].phone_number, "+8613800138000");
    assert_eq!(sent[0].sdk_app_id, "1400006666");
    assert_eq!(
        sent[0].template_params,
        vec!["磁盘 使用率".to_owned(), "95%".to_owned()]
    );
    let request = mock.last().expect("logged");
    assert_eq!(request.header("x-tc-action"), Some("SendSms"));
    assert_eq!(request.header("x-tc-version"), Some("2021-01-11"));
    assert!(
        request
            .header("authorization")
            .is_some_and(|a| a.contains("/sms/tc3_request, SignedHeaders=content-type;host, ")),
        "{request:?}"
    );

    assert_refused(
        &python,
        "tencent_send.py",
        &tencent_args(&mock, TENCENT_ID, "wrong-key", "+8613900139000"),
        "AuthFailure.SignatureFailure",
    );

    assert_refused(
        &python,
        "tencent_send.py",
        &tencent_args(&mock, "AKIDunknown", TENCENT_KEY, "+8613900139000"),
        "AuthFailure.SecretIdNotFound",
    );

    // The same number within 30 seconds: refused for that number, inside an HTTP 200.
    assert_refused(
        &python,
        "tencent_send.py",
        &tencent_args(&mock, TENCENT_ID, TENCENT_KEY, "+8613800138000"),
        "LimitExceeded.PhoneNumberThirtySecondLimit",
    );
    assert_eq!(mock.accepted().len(), 1);
}

fn aliyun_voice_args(mock: &AliyunVoiceMock, secret: &str, number: &str) -> Vec<String> {
    [
        "--endpoint",
        &mock.endpoint(),
        "--access-key-id",
        ALIYUN_AK,
        "--access-key-secret",
        secret,
        "--called-number",
        number,
        "--called-show-number",
        "4001112222",
        "--tts-code",
        "TTS_10001",
        "--tts-param",
        r#"{"name":"磁盘 使用率过高","level":"critical (主库)"}"#,
        "--play-times",
        "2",
        "--volume",
        "80",
        "--speed",
        "-100",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

#[test]
fn aliyun_voice_sdk_is_accepted_and_a_wrong_secret_refused() {
    let Some(python) = python() else { return };
    let mock = AliyunVoiceMock::start(ALIYUN_AK, ALIYUN_SECRET);

    let ok = run(
        &python,
        "aliyun_voice_call.py",
        &aliyun_voice_args(&mock, ALIYUN_SECRET, "13800138000"),
    );
    assert_eq!(ok.exit, Some(0), "{}", ok.output);
    assert_eq!(ok.result["body"]["Code"], "OK", "{}", ok.output);
    assert!(
        ok.result["body"]["CallId"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    println!("aliyun voice SDK: {}", ok.result);

    let calls = mock.calls();
    assert_eq!(calls.len(), 1, "{:?}", mock.requests());
    assert_eq!(calls[0].called_number, "13800138000");
    assert_eq!(calls[0].called_show_number.as_deref(), Some("4001112222"));
    assert_eq!(calls[0].tts_code, "TTS_10001");
    let params = calls[0].tts_param.clone().unwrap_or_default();
    assert_eq!(params["name"], "磁盘 使用率过高");
    assert_eq!(params["level"], "critical (主库)");
    assert_eq!(
        (calls[0].play_times, calls[0].volume, calls[0].speed),
        (Some(2), Some(80), Some(-100))
    );
    let request = mock.last().expect("logged");
    assert_eq!(request.header("x-acs-action"), Some("SingleCallByTts"));
    assert_eq!(request.header("x-acs-version"), Some("2017-05-25"));

    assert_refused(
        &python,
        "aliyun_voice_call.py",
        &aliyun_voice_args(&mock, "wrong-secret", "13900139000"),
        "SignatureDoesNotMatch",
    );

    // The same number again within a minute: the SDK sees the business code.
    assert_refused(
        &python,
        "aliyun_voice_call.py",
        &aliyun_voice_args(&mock, ALIYUN_SECRET, "13800138000"),
        "isv.BUSINESS_LIMIT_CONTROL",
    );
    assert_eq!(mock.accepted().len(), 1);
}

fn tencent_voice_args(
    mock: &TencentVoiceMock,
    secret_id: &str,
    secret_key: &str,
    number: &str,
) -> Vec<String> {
    [
        "--endpoint",
        &mock.endpoint(),
        "--secret-id",
        secret_id,
        "--secret-key",
        secret_key,
        "--called-number",
        number,
        "--voice-sdk-app-id",
        "1400006666",
        "--template-id",
        "4356",
        "--param",
        "磁盘 使用率过高",
        "--param",
        "db-1",
        "--play-times",
        "2",
        "--session-context",
        "lookout-sdk",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

#[test]
fn tencent_voice_sdk_is_accepted_and_a_wrong_secret_refused() {
    let Some(python) = python() else { return };
    let mock = TencentVoiceMock::start(TENCENT_ID, TENCENT_KEY);

    let ok = run(
        &python,
        "tencent_voice_call.py",
        &tencent_voice_args(&mock, TENCENT_ID, TENCENT_KEY, "+8613800138000"),
    );
    assert_eq!(ok.exit, Some(0), "{}", ok.output);
    assert_eq!(
        ok.result["body"]["SendStatus"]["SessionContext"], "lookout-sdk",
        "{}",
        ok.output
    );
    println!("tencent voice SDK: {}", ok.result);

    let calls = mock.calls();
    assert_eq!(calls.len(), 1, "{:?}", mock.requests());
    assert_eq!(calls[0].called_number, "+8613800138000");
    assert_eq!(calls[0].voice_sdk_app_id, "1400006666");
    assert_eq!(calls[0].template_id, "4356");
    assert_eq!(
        calls[0].template_params,
        vec!["磁盘 使用率过高".to_owned(), "db-1".to_owned()]
    );
    assert_eq!(calls[0].play_times, Some(2));
    let request = mock.last().expect("logged");
    assert_eq!(request.header("x-tc-action"), Some("SendTtsVoice"));
    assert_eq!(request.header("x-tc-version"), Some("2020-09-02"));
    assert!(
        request
            .header("authorization")
            .is_some_and(|a| a.contains("/vms/tc3_request, SignedHeaders=content-type;host, ")),
        "{request:?}"
    );

    assert_refused(
        &python,
        "tencent_voice_call.py",
        &tencent_voice_args(&mock, TENCENT_ID, "wrong-key", "+8613900139000"),
        "AuthFailure.SignatureFailure",
    );

    // The same number within 30 seconds: the frequency policy refuses it.
    assert_refused(
        &python,
        "tencent_voice_call.py",
        &tencent_voice_args(&mock, TENCENT_ID, TENCENT_KEY, "+8613800138000"),
        "LimitExceeded.DeliveryFrequencyLimit",
    );
    assert_eq!(mock.accepted().len(), 1);
}
