//! The deployment kit in `deploy/`, validated offline: every YAML file parses; the
//! Kubernetes manifests, the compose file, the Dockerfile and the systemd unit pass their
//! schema checkers and linters (`deploy/validate.sh`, tools from PyPI); the Operator's
//! kinds are checked by hand and their rules by `promtool`; the committed PrometheusRule
//! is what `build-prometheusrule.sh` makes of `rules/`; the files agree with each other
//! and with `rules/`, `alertmanager/` and `grafana/` (paths, hosts, secrets, variables);
//! the shipped lookout configurations pass `lookout check-config`; the scripts parse.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{in_ci, require_binary};
use marked_yaml::Node;
use regex::Regex;
use serde_json::{Map, Value};

const SERVICES: [&str; 5] = [
    "lookout",
    "mariadb",
    "prometheus",
    "alertmanager",
    "grafana",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn deploy() -> PathBuf {
    root().join("deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
}

/// A YAML node as JSON with every scalar a string (marked-yaml keeps no types).
fn to_json(node: &Node) -> Value {
    match node {
        Node::Scalar(scalar) => Value::String(scalar.as_str().to_owned()),
        Node::Mapping(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (key.as_str().to_owned(), to_json(value)))
                .collect::<Map<_, _>>(),
        ),
        Node::Sequence(seq) => Value::Array(seq.iter().map(to_json).collect()),
    }
}

/// The documents of a YAML file (split on lines that are exactly `---`), each parsed by
/// marked-yaml; documents holding only comments are left out.
fn documents(path: &Path) -> Vec<Value> {
    let text = read(path);
    let mut documents = vec![String::new()];
    for line in text.lines() {
        if line == "---" {
            documents.push(String::new());
        } else if let Some(current) = documents.last_mut() {
            current.push_str(line);
            current.push('\n');
        }
    }
    documents
        .iter()
        .filter(|doc| {
            doc.lines()
                .any(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        })
        .map(|doc| {
            let node = marked_yaml::parse_yaml(0, doc)
                .unwrap_or_else(|error| panic!("{} does not parse: {error}", path.display()));
            to_json(&node)
        })
        .collect()
}

/// The one document of a YAML file.
fn document(path: &Path) -> Value {
    let mut docs = documents(path);
    assert_eq!(docs.len(), 1, "{} should hold one document", path.display());
    docs.remove(0)
}

fn str_of<'a>(value: &'a Value, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} should be a string, is {value}"))
}

fn seq<'a>(value: &'a Value, what: &str) -> &'a Vec<Value> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{what} should be a list, is {value}"))
}

fn yaml_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("read {}: {error}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            // deploy/local/.run holds what run.sh generated, not the kit.
            if !name.starts_with('.') {
                yaml_files(&path, found);
            }
        } else if name.ends_with(".yml") || name.ends_with(".yaml") {
            found.push(path);
        }
    }
}

/// `${VAR}` references (also `${VAR:-default}`) in `text`.
fn variables(text: &str) -> BTreeSet<String> {
    let pattern = Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)").expect("valid regex");
    pattern
        .captures_iter(text)
        .map(|captures| captures[1].to_owned())
        .collect()
}

/// `text` without its comment lines, for files whose commented examples use `${VAR}`s
/// that need not be set.
fn without_comment_lines(text: &str) -> String {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

fn output_text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `deploy/validate.sh <what>`. Exit 3 means a tool could not be had (PyPI
/// unreachable, no kubectl or systemd-analyze): a skip outside CI, a failure in CI.
fn validate(what: &str) {
    let output = Command::new("bash")
        .arg(deploy().join("validate.sh"))
        .arg(what)
        .output()
        .expect("run bash");
    match output.status.code() {
        Some(0) => {}
        Some(3) if !in_ci() => {
            eprintln!(
                "SKIPPED: deploy/validate.sh {what}: a tool is unavailable:\n{}",
                output_text(&output)
            );
        }
        _ => panic!(
            "deploy/validate.sh {what} failed ({}):\n{}",
            output.status,
            output_text(&output)
        ),
    }
}

// ---- every file ----

#[test]
fn every_yaml_file_under_deploy_parses() {
    let mut files = Vec::new();
    yaml_files(&deploy(), &mut files);
    assert!(files.len() >= 10, "too few YAML files found: {files:?}");
    for path in files {
        assert!(
            !documents(&path).is_empty(),
            "{} holds no document",
            path.display()
        );
    }
}

#[test]
fn the_scripts_parse() {
    for script in [
        "local/run.sh",
        "validate.sh",
        "kubernetes/build-prometheusrule.sh",
        "mariadb/20-lookout-user.sh",
    ] {
        let output = Command::new("bash")
            .arg("-n")
            .arg(deploy().join(script))
            .output()
            .expect("run bash");
        assert!(
            output.status.success(),
            "bash -n deploy/{script}:\n{}",
            output_text(&output)
        );
    }
}

// ---- the lookout configurations ----

/// `lookout check-config` on `text` (written to a temp file), with `env` set.
fn check_config(name: &str, text: &str, env: &[(&str, &str)]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write config");
    let output = Command::new(env!("CARGO_BIN_EXE_lookout"))
        .arg("check-config")
        .arg(&path)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run lookout check-config");
    assert!(
        output.status.success(),
        "{name} does not pass check-config:\n{}",
        output_text(&output)
    );
}

/// A directory with a dummy file for every name, standing in for mounted secrets.
fn secrets_dir(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for name in names {
        std::fs::write(dir.path().join(name), "not-a-secret\n").expect("write secret");
    }
    dir
}

/// The file names `lookout.yaml` reads from `${CREDENTIALS_DIRECTORY}`.
fn credentials(text: &str) -> BTreeSet<String> {
    let pattern = Regex::new(r"\$\{CREDENTIALS_DIRECTORY\}/([A-Za-z0-9_.-]+)").expect("regex");
    pattern
        .captures_iter(&without_comment_lines(text))
        .map(|captures| captures[1].to_owned())
        .collect()
}

#[test]
fn the_shipped_configurations_pass_check_config() {
    // Compose, run.sh and systemd: deploy/lookout.yaml.
    let text = read(&deploy().join("lookout.yaml"));
    let names = credentials(&text);
    assert!(
        names.contains("lookout_webhook_token") && names.contains("shop_db_password"),
        "deploy/lookout.yaml should read its secrets from files: {names:?}"
    );
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let secrets = secrets_dir(&names);
    let dir = secrets.path().to_str().expect("utf-8 temp path");
    check_config(
        "lookout.yaml",
        &text,
        &[
            ("SHOP_DB_ADDR", "mariadb:3306"),
            ("CREDENTIALS_DIRECTORY", dir),
        ],
    );

    // The image's default.
    check_config(
        "lookout.image.yaml",
        &read(&deploy().join("lookout.image.yaml")),
        &[],
    );

    // Kubernetes: the Secret's files at /run/secrets/lookout, variables from the Deployment.
    let text = read(&deploy().join("kubernetes/lookout.yaml"));
    let secrets = secrets_dir(&["webhook-token", "shop-db-password", "dingtalk-secret"]);
    let dir = secrets.path().to_str().expect("utf-8 temp path");
    let text = text.replace("/run/secrets/lookout", dir);
    let vars = variables(&without_comment_lines(&text));
    let env: Vec<(&str, &str)> = vars.iter().map(|var| (var.as_str(), "x")).collect();
    check_config("kubernetes-lookout.yaml", &text, &env);

    // Kubernetes, per node: host metrics only.
    check_config(
        "kubernetes-lookout-node.yaml",
        &read(&deploy().join("kubernetes/lookout-node.yaml")),
        &[],
    );

    // Kubernetes, replicas on a shared outbox.
    let text = read(&deploy().join("kubernetes-ha/lookout.yaml"));
    let secrets = secrets_dir(&[
        "webhook-token",
        "shop-db-password",
        "dingtalk-secret",
        "outbox-password",
    ]);
    let dir = secrets.path().to_str().expect("utf-8 temp path");
    let text = text.replace("/run/secrets/lookout", dir);
    let vars = variables(&without_comment_lines(&text));
    let env: Vec<(&str, &str)> = vars.iter().map(|var| (var.as_str(), "x")).collect();
    check_config("kubernetes-ha-lookout.yaml", &text, &env);
}

#[test]
fn the_compose_config_runs_the_example_shops_queries_verbatim() {
    let deployed = document(&deploy().join("lookout.yaml"));
    let example = document(&root().join("examples/shop/lookout.yaml"));
    assert!(seq(&example["queries"], "queries").len() >= 10);
    assert_eq!(
        deployed["queries"], example["queries"],
        "deploy/lookout.yaml's queries differ from examples/shop/lookout.yaml's: copy them again"
    );
    assert_eq!(
        deployed["receivers"]
            .as_object()
            .map(|receivers| receivers.keys().cloned().collect::<Vec<_>>()),
        Some(vec![
            "critical".into(),
            "high".into(),
            "info".into(),
            "warning".into()
        ]),
        "the receivers Alertmanager posts to"
    );
}

// ---- Docker ----

/// The Dockerfile's instructions (continuation lines joined, comments dropped) as
/// (instruction, arguments), with the index of the stage each belongs to.
fn dockerfile() -> Vec<(usize, String, String)> {
    let text = read(&deploy().join("Dockerfile"));
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        instructions.push(std::mem::take(&mut current));
    }
    let mut stage = 0;
    instructions
        .into_iter()
        .filter_map(|instruction| {
            let (keyword, args) = instruction.split_once(' ')?;
            let keyword = keyword.to_ascii_uppercase();
            if keyword == "FROM" {
                stage += 1;
            }
            Some((stage, keyword, args.trim().to_owned()))
        })
        .collect()
}

#[test]
fn the_dockerfile_builds_a_static_binary_onto_a_small_non_root_image() {
    let instructions = dockerfile();
    let stages: Vec<&str> = instructions
        .iter()
        .filter(|(_, keyword, _)| keyword == "FROM")
        .map(|(_, _, args)| args.as_str())
        .collect();
    assert!(stages.len() >= 2, "a multi-stage build: {stages:?}");
    assert!(
        stages[0].starts_with("rust:") && stages[0].ends_with(" AS build"),
        "the first stage builds with the Rust image: {}",
        stages[0]
    );
    let last = stages.len();
    let runtime = stages[last - 1];
    assert!(
        runtime == "scratch" || runtime.starts_with("gcr.io/distroless/static"),
        "the runtime stage is static-only: {runtime}"
    );
    let stage_names: BTreeSet<&str> = stages
        .iter()
        .filter_map(|from| from.split_once(" AS ").map(|(_, name)| name))
        .collect();

    let build = instructions
        .iter()
        .find(|(stage, keyword, args)| {
            *stage == 1 && keyword == "RUN" && args.contains("cargo build")
        })
        .map(|(_, _, args)| args.as_str())
        .expect("the build stage runs cargo build");
    for flag in [
        "--release",
        "--locked",
        "--target x86_64-unknown-linux-musl",
    ] {
        assert!(build.contains(flag), "cargo build without {flag}: {build}");
    }

    let final_stage: Vec<(&str, &str)> = instructions
        .iter()
        .filter(|(stage, _, _)| *stage == last)
        .map(|(_, keyword, args)| (keyword.as_str(), args.as_str()))
        .collect();
    let one = |keyword: &str| -> &str {
        let found: Vec<&str> = final_stage
            .iter()
            .filter(|(k, _)| *k == keyword)
            .map(|(_, args)| *args)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one {keyword} in the final stage: {found:?}"
        );
        found[0]
    };
    let user = one("USER");
    let uid = user.split(':').next().unwrap_or_default();
    assert!(
        uid.parse::<u32>().is_ok_and(|uid| uid != 0),
        "a numeric non-root USER (so runAsNonRoot can check it): {user}"
    );
    assert_eq!(one("EXPOSE"), "9788");
    assert_eq!(one("VOLUME"), "/var/lib/lookout");
    assert_eq!(one("ENTRYPOINT"), r#"["/lookout"]"#);
    assert_eq!(
        one("CMD"),
        r#"["--config", "/etc/lookout/lookout.yaml", "--state-dir", "/var/lib/lookout"]"#
    );
    let healthcheck = one("HEALTHCHECK");
    assert!(
        healthcheck.contains(r#"CMD ["/usr/local/bin/wget""#)
            && healthcheck.contains("http://127.0.0.1:9788/-/healthy"),
        "HEALTHCHECK probes /-/healthy in exec form (no shell in distroless): {healthcheck}"
    );

    // COPY sources: from a named stage, or from the context past the ignore file.
    let ignore = read(&deploy().join("Dockerfile.dockerignore"));
    let included: Vec<&str> = ignore
        .lines()
        .filter_map(|line| line.strip_prefix('!'))
        .map(|path| path.trim_end_matches('/'))
        .collect();
    assert!(
        ignore.lines().any(|line| line == "*"),
        "the ignore file excludes everything first"
    );
    for (_, keyword, args) in &instructions {
        if keyword != "COPY" {
            continue;
        }
        let words: Vec<&str> = args.split_whitespace().collect();
        if let Some(from) = words.iter().find_map(|word| word.strip_prefix("--from=")) {
            assert!(
                stage_names.contains(from),
                "COPY --from={from} names no stage of {stage_names:?}"
            );
            continue;
        }
        let sources: Vec<&str> = words
            .iter()
            .filter(|word| !word.starts_with("--"))
            .copied()
            .collect();
        for source in &sources[..sources.len() - 1] {
            let source = source.trim_end_matches('/');
            assert!(root().join(source).exists(), "COPY {source}: no such file");
            assert!(
                included.contains(&source),
                "COPY {source}: Dockerfile.dockerignore keeps it out of the context"
            );
        }
    }
    // Everything cargo needs is in the context.
    for needed in ["Cargo.toml", "Cargo.lock", "src"] {
        assert!(included.contains(&needed), "the context lacks {needed}");
    }
}

#[test]
fn the_dockerfile_passes_hadolint() {
    validate("dockerfile");
}

// ---- compose ----

fn compose() -> Value {
    document(&deploy().join("docker-compose.yml"))
}

/// `host:container[:mode]` of a short-syntax volume entry.
fn volume(entry: &Value) -> (String, String) {
    let entry = str_of(entry, "a volume entry");
    let mut parts = entry.split(':');
    let source = parts.next().unwrap_or_default().to_owned();
    let target = parts
        .next()
        .unwrap_or_else(|| panic!("volume {entry} has no target"))
        .to_owned();
    (source, target)
}

/// The container path that `host` (as written in the compose file) is mounted at.
fn mount_target(service: &Value, host: &str) -> String {
    seq(&service["volumes"], "volumes")
        .iter()
        .map(volume)
        .find(|(source, _)| source == host)
        .map(|(_, target)| target)
        .unwrap_or_else(|| panic!("{host} is not mounted"))
}

#[test]
fn the_compose_file_validates_against_the_compose_specification() {
    validate("compose");
}

#[test]
fn compose_services_build_mount_and_check_what_exists() {
    let compose = compose();
    let services = compose["services"].as_object().expect("services");
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(names, SERVICES.into_iter().collect());

    let build = &services["lookout"]["build"];
    let context = deploy().join(str_of(&build["context"], "build.context"));
    assert_eq!(
        context.canonicalize().expect("build context exists"),
        root().canonicalize().expect("repository root"),
        "the build context is the repository root"
    );
    assert!(
        context
            .join(str_of(&build["dockerfile"], "build.dockerfile"))
            .is_file(),
        "build.dockerfile is relative to the context"
    );

    let declared_volumes = compose["volumes"].as_object().expect("top-level volumes");
    let declared_secrets = compose["secrets"].as_object().expect("top-level secrets");
    for (name, service) in services {
        if name != "lookout" {
            assert!(
                service["healthcheck"]["test"].is_array(),
                "{name} has no healthcheck (lookout's is the image's HEALTHCHECK)"
            );
        }
        for (source, target) in service["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(volume)
        {
            if source.starts_with('.') || source.starts_with('/') {
                assert!(
                    deploy().join(&source).exists(),
                    "{name} mounts {source} (at {target}), which does not exist"
                );
            } else {
                assert!(
                    declared_volumes.contains_key(&source),
                    "{name} mounts the undeclared volume {source}"
                );
            }
        }
        for secret in service["secrets"].as_array().into_iter().flatten() {
            let secret = secret["source"]
                .as_str()
                .or(secret.as_str())
                .expect("secret");
            assert!(
                declared_secrets.contains_key(secret),
                "{name} uses the undeclared secret {secret}"
            );
        }
    }
    // lookout sees the host's root, read-only, at /host (for host.rootfs).
    let host_root = seq(&services["lookout"]["volumes"], "lookout volumes")
        .iter()
        .map(|entry| str_of(entry, "volume"))
        .find(|entry| entry.starts_with("/:"))
        .expect("lookout mounts the host's root");
    assert_eq!(mount_target(&services["lookout"], "/"), "/host");
    assert!(
        host_root
            .split(':')
            .nth(2)
            .is_some_and(|mode| mode.split(',').any(|m| m == "ro")),
        "the host's root is mounted read-only: {host_root}"
    );

    // Passwords reach containers as secrets, never in `environment:`.
    for (name, service) in services {
        for (key, value) in service["environment"].as_object().into_iter().flatten() {
            assert!(
                !key.contains("PASSWORD") || key.ends_with("_FILE") || key.contains("RANDOM"),
                "{name} sets the password {key} in its environment: {value}"
            );
        }
    }
}

#[test]
fn compose_variables_are_documented_and_lookouts_are_set() {
    let text = read(&deploy().join("docker-compose.yml"));
    let compose = compose();
    let mut referenced = variables(&text);
    for secret in compose["secrets"].as_object().expect("secrets").values() {
        if let Some(var) = secret["environment"].as_str() {
            referenced.insert(var.to_owned());
        }
    }
    let readme = read(&deploy().join("README.md"));
    let example = read(&deploy().join("env.example"));
    for var in &referenced {
        assert!(
            readme.contains(&format!("`{var}`")),
            "docker-compose.yml uses {var}: describe it in deploy/README.md"
        );
        assert!(
            example.contains(&format!("{var}=")),
            "docker-compose.yml uses {var}: list it in deploy/env.example"
        );
    }

    // lookout.yaml's variables are set in the lookout service, and its secret files are
    // the service's secrets at /run/secrets.
    let lookout = &compose["services"]["lookout"];
    let config = read(&deploy().join("lookout.yaml"));
    for var in variables(&without_comment_lines(&config)) {
        assert!(
            lookout["environment"][&var].is_string(),
            "deploy/lookout.yaml uses ${{{var}}}, which the lookout service does not set"
        );
    }
    assert_eq!(
        lookout["environment"]["CREDENTIALS_DIRECTORY"],
        "/run/secrets"
    );
    let secrets: BTreeSet<String> = seq(&lookout["secrets"], "lookout secrets")
        .iter()
        .map(|secret| str_of(secret, "a short-syntax secret").to_owned())
        .collect();
    assert_eq!(credentials(&config), secrets);
}

#[test]
fn compose_agrees_with_the_rules_alertmanager_and_grafana_kits() {
    let compose = compose();
    let services = &compose["services"];

    // Prometheus loads the mounted rules/ and sends alerts to the alertmanager service.
    let prometheus = document(&deploy().join("prometheus/prometheus.yml"));
    let rules_at = mount_target(&services["prometheus"], "../rules");
    assert_eq!(
        prometheus["rule_files"],
        Value::Array(vec![Value::String(format!("{rules_at}/*.yml"))])
    );
    for entry in std::fs::read_dir(root().join("rules")).expect("rules/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|ext| ext == "yml") {
            assert!(
                document(&path)["groups"].is_array(),
                "{} matches Prometheus' rule_files glob but is no rule file",
                path.display()
            );
        }
    }
    let targets = |value: &Value| -> Vec<String> {
        seq(&value["static_configs"], "static_configs")
            .iter()
            .flat_map(|config| seq(&config["targets"], "targets").clone())
            .map(|target| str_of(&target, "target").to_owned())
            .collect()
    };
    assert_eq!(
        targets(&prometheus["alerting"]["alertmanagers"][0]),
        ["alertmanager:9093"]
    );
    let lookout_job = seq(&prometheus["scrape_configs"], "scrape_configs")
        .iter()
        .find(|job| job["job_name"] == "lookout")
        .expect("a lookout job");
    assert_eq!(targets(lookout_job), ["lookout:9788"]);

    // Alertmanager posts to the lookout service with the token compose mounts for it.
    let alertmanager = document(&root().join("alertmanager/alertmanager.yml"));
    let token_at = seq(&services["alertmanager"]["secrets"], "alertmanager secrets")
        .iter()
        .find(|secret| secret["source"] == "lookout_webhook_token")
        .map(|secret| str_of(&secret["target"], "secret target").to_owned())
        .expect("alertmanager gets the lookout_webhook_token secret");
    let receivers = seq(&alertmanager["receivers"], "receivers");
    let mut webhooks = 0;
    for receiver in receivers {
        for webhook in receiver["webhook_configs"].as_array().into_iter().flatten() {
            webhooks += 1;
            let url = str_of(&webhook["url"], "url");
            assert!(
                url.starts_with("http://lookout:9788/alertmanager/"),
                "Alertmanager posts to {url}, not to the lookout service"
            );
            assert_eq!(
                str_of(
                    &webhook["http_config"]["authorization"]["credentials_file"],
                    "credentials_file"
                ),
                token_at,
                "Alertmanager's credentials_file is not where compose mounts the token"
            );
        }
    }
    assert!(webhooks >= 4, "one webhook per severity");
    mount_target(
        &services["alertmanager"],
        "../alertmanager/alertmanager.yml",
    );

    // Grafana: the dashboards where the provider looks, the datasource at prometheus:9090.
    let grafana = &services["grafana"];
    let provider = document(&root().join("grafana/provisioning/dashboards/lookout.yml"));
    assert_eq!(
        str_of(&provider["providers"][0]["options"]["path"], "options.path"),
        mount_target(grafana, "../grafana/dashboards")
    );
    assert_eq!(
        mount_target(grafana, "../grafana/provisioning"),
        "/etc/grafana/provisioning"
    );
    let datasources = document(&root().join("grafana/provisioning/datasources/prometheus.yml"));
    assert_eq!(
        datasources["datasources"][0]["url"],
        "http://prometheus:9090"
    );
    // ... and the Alertmanager datasource at the alertmanager service's port.
    let alertmanager_ds = seq(&datasources["datasources"], "datasources")
        .iter()
        .find(|ds| ds["type"] == "alertmanager")
        .expect("an Alertmanager datasource");
    assert!(services.get("alertmanager").is_some());
    assert_eq!(alertmanager_ds["url"], "http://alertmanager:9093");
}

// ---- Kubernetes ----

fn kubernetes(file: &str) -> Value {
    document(&deploy().join("kubernetes").join(file))
}

#[test]
fn kubernetes_manifests_validate_against_the_schemas() {
    validate("kubernetes");
}

#[test]
fn kubernetes_manifests_fit_together() {
    let kustomization = kubernetes("kustomization.yaml");
    for resource in seq(&kustomization["resources"], "resources") {
        let file = str_of(resource, "resource");
        assert!(
            deploy().join("kubernetes").join(file).is_file(),
            "kustomization lists {file}, which does not exist"
        );
    }
    assert!(
        !seq(&kustomization["resources"], "resources").contains(&"secret.example.yaml".into()),
        "the example Secret must not be applied with the kustomization"
    );

    let deployment = kubernetes("deployment.yaml");
    let service = kubernetes("service.yaml");
    let monitor = kubernetes("servicemonitor.yaml");
    let secret = kubernetes("secret.example.yaml");
    let pod = &deployment["spec"]["template"];
    let container = &pod["spec"]["containers"][0];

    // The probes, the limits and the security context the image allows.
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/-/healthy");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/-/ready");
    for kind in ["requests", "limits"] {
        assert!(
            container["resources"][kind]["memory"].is_string(),
            "resources.{kind}.memory"
        );
    }
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], "true");
    assert_eq!(pod["spec"]["securityContext"]["runAsUser"], "65532");
    assert_eq!(
        container["securityContext"]["readOnlyRootFilesystem"],
        "true"
    );
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        "false"
    );
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");

    // Volumes: config from the generated ConfigMap, state on the PVC, secrets from the Secret.
    let volumes = seq(&pod["spec"]["volumes"], "volumes");
    let volume = |name: &str| -> &Value {
        volumes
            .iter()
            .find(|volume| volume["name"] == name)
            .unwrap_or_else(|| panic!("no volume {name}"))
    };
    let mount = |name: &str| -> String {
        seq(&container["volumeMounts"], "volumeMounts")
            .iter()
            .find(|mount| mount["name"] == name)
            .map(|mount| str_of(&mount["mountPath"], "mountPath").to_owned())
            .unwrap_or_else(|| panic!("volume {name} is not mounted"))
    };
    assert_eq!(
        volume("config")["configMap"]["name"],
        kustomization["configMapGenerator"][0]["name"]
    );
    assert_eq!(mount("config"), "/etc/lookout");
    assert_eq!(
        volume("state")["persistentVolumeClaim"]["claimName"],
        kubernetes("pvc.yaml")["metadata"]["name"]
    );
    assert_eq!(mount("state"), "/var/lib/lookout");
    let args: Vec<&str> = seq(&container["args"], "args")
        .iter()
        .map(|arg| str_of(arg, "arg"))
        .collect();
    assert_eq!(
        args,
        [
            "--config",
            "/etc/lookout/lookout.yaml",
            "--state-dir",
            "/var/lib/lookout"
        ]
    );

    // Every Secret key the Deployment uses exists in the example, and every secret file
    // and variable lookout.yaml uses is provided.
    // Channel secrets are optional (a channel you do not use needs no key); the
    // database password and the webhook token are not.
    let secret_name = &secret["metadata"]["name"];
    let keys = secret["stringData"].as_object().expect("stringData");
    let channel_key = |key: &str| key.starts_with("dingtalk-") || key.starts_with("wecom-");
    let secret_dir = mount("secrets");
    let mut files = BTreeSet::new();
    for source in seq(
        &volume("secrets")["projected"]["sources"],
        "projected sources",
    ) {
        let source = &source["secret"];
        assert_eq!(&source["name"], secret_name);
        let optional = source["optional"] == "true";
        for item in seq(&source["items"], "items") {
            let key = str_of(&item["key"], "key");
            assert!(keys.contains_key(key), "the Secret has no key {key}");
            assert_eq!(optional, channel_key(key), "secret file {key}: optional");
            files.insert(format!("{secret_dir}/{}", str_of(&item["path"], "path")));
        }
    }
    let mut env = BTreeSet::new();
    for var in seq(&container["env"], "env") {
        let reference = &var["valueFrom"]["secretKeyRef"];
        assert_eq!(&reference["name"], secret_name);
        let key = str_of(&reference["key"], "key");
        assert!(keys.contains_key(key), "the Secret has no key {key}");
        assert_eq!(
            reference["optional"] == "true",
            channel_key(key),
            "variable from {key}: optional"
        );
        env.insert(str_of(&var["name"], "env name").to_owned());
    }
    let config = without_comment_lines(&read(&deploy().join("kubernetes/lookout.yaml")));
    assert_eq!(
        variables(&config),
        env,
        "lookout.yaml's ${{VAR}}s vs the Deployment's env"
    );
    let file_pattern = Regex::new(r"_file: (\S+)").expect("regex");
    for captures in file_pattern.captures_iter(&config) {
        assert!(
            files.contains(&captures[1]),
            "lookout.yaml reads {}, which the Secret volume does not provide ({files:?})",
            &captures[1]
        );
    }

    // The Service selects the pods, and the ServiceMonitor the Service, by its port name.
    let pod_labels = &pod["metadata"]["labels"];
    for (key, value) in service["spec"]["selector"].as_object().expect("selector") {
        assert_eq!(
            &pod_labels[key], value,
            "the Service does not select the pods"
        );
    }
    let port_name = &service["spec"]["ports"][0]["name"];
    assert_eq!(&container["ports"][0]["name"], port_name);
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["kind"], "ServiceMonitor");
    assert!(monitor["metadata"]["name"].is_string());
    for (key, value) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("spec.selector.matchLabels")
    {
        assert_eq!(
            &service["metadata"]["labels"][key], value,
            "the ServiceMonitor does not select the Service"
        );
    }
    let endpoint = &monitor["spec"]["endpoints"][0];
    assert_eq!(&endpoint["port"], port_name);
    assert_eq!(endpoint["path"], "/metrics");
    // A stable instance: from the Service, not the pod's address.
    let relabel = &endpoint["relabelings"][0];
    assert_eq!(relabel["targetLabel"], "instance");
    assert_eq!(
        relabel["sourceLabels"],
        serde_json::json!([
            "__meta_kubernetes_namespace",
            "__meta_kubernetes_service_name"
        ])
    );

    // The DaemonSet: every node, the node's root read-only at /host, its own config.
    let daemonset = kubernetes("daemonset.yaml");
    let node_pod = &daemonset["spec"]["template"];
    let node_container = &node_pod["spec"]["containers"][0];
    assert_eq!(daemonset["kind"], "DaemonSet");
    assert_eq!(node_pod["spec"]["tolerations"][0]["operator"], "Exists");
    assert_eq!(node_pod["spec"]["securityContext"]["runAsNonRoot"], "true");
    assert_eq!(
        node_container["securityContext"]["readOnlyRootFilesystem"],
        "true"
    );
    let node_volumes = seq(&node_pod["spec"]["volumes"], "volumes");
    let node_volume = |name: &str| {
        node_volumes
            .iter()
            .find(|volume| volume["name"] == name)
            .unwrap_or_else(|| panic!("no DaemonSet volume {name}"))
    };
    assert_eq!(node_volume("host-root")["hostPath"]["path"], "/");
    let host_mount = seq(&node_container["volumeMounts"], "volumeMounts")
        .iter()
        .find(|mount| mount["name"] == "host-root")
        .expect("the host root is mounted");
    assert_eq!(host_mount["mountPath"], "/host");
    assert_eq!(host_mount["readOnly"], "true");
    let generators = seq(&kustomization["configMapGenerator"], "configMapGenerator");
    let node_config = generators
        .iter()
        .find(|generator| generator["name"] == node_volume("config")["configMap"]["name"])
        .expect("the DaemonSet's ConfigMap is generated");
    assert_eq!(node_config["files"][0], "lookout.yaml=lookout-node.yaml");
    let node_text = read(&deploy().join("kubernetes/lookout-node.yaml"));
    assert!(
        node_text.contains("rootfs: /host"),
        "lookout-node.yaml names the host root"
    );

    // The PodMonitor scrapes those pods as job lookout-node (which the rules' job
    // matcher takes), with the node's name as the instance.
    let podmonitor = kubernetes("podmonitor-node.yaml");
    assert_eq!(podmonitor["kind"], "PodMonitor");
    let node_labels = &node_pod["metadata"]["labels"];
    for (key, value) in podmonitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("spec.selector.matchLabels")
    {
        assert_eq!(
            &node_labels[key], value,
            "the PodMonitor does not select the pods"
        );
    }
    let job = &node_labels[str_of(&podmonitor["spec"]["jobLabel"], "jobLabel")];
    let job = str_of(job, "the job label's value");
    assert!(
        Regex::new("^lookout.*$").expect("regex").is_match(job),
        "job {job} escapes rules' job=~\"lookout.*\""
    );
    let endpoint = &podmonitor["spec"]["podMetricsEndpoints"][0];
    assert_eq!(&endpoint["port"], &node_container["ports"][0]["name"]);
    assert_eq!(
        endpoint["relabelings"][0]["sourceLabels"][0],
        "__meta_kubernetes_pod_node_name"
    );
    assert_eq!(endpoint["relabelings"][0]["targetLabel"], "instance");
}

/// `name="value"`-style matchers of an AlertmanagerConfig list, as alertmanager.yml
/// writes them.
fn operator_matchers(list: &Value) -> Vec<String> {
    list.as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|m| {
            format!(
                "{}{}\"{}\"",
                str_of(&m["name"], "matcher name"),
                m["matchType"].as_str().unwrap_or("="),
                str_of(&m["value"], "matcher value")
            )
        })
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|v| str_of(v, "a string").to_owned())
        .collect()
}

#[test]
fn the_alertmanagerconfig_routes_and_inhibits_like_alertmanager_yml() {
    let shipped = document(&root().join("alertmanager/alertmanager.yml"));
    let operator = kubernetes("alertmanagerconfig.yaml");
    assert_eq!(operator["apiVersion"], "monitoring.coreos.com/v1alpha1");
    assert_eq!(operator["kind"], "AlertmanagerConfig");
    let spec = &operator["spec"];

    assert_eq!(spec["route"]["receiver"], shipped["route"]["receiver"]);
    assert_eq!(spec["route"]["groupBy"], shipped["route"]["group_by"]);
    let routes = seq(&spec["route"]["routes"], "routes");
    let shipped_routes = seq(&shipped["route"]["routes"], "routes");
    assert_eq!(routes.len(), shipped_routes.len(), "as many routes");
    for (route, want) in routes.iter().zip(shipped_routes) {
        let at = format!("route to {}", want["receiver"]);
        assert_eq!(route["receiver"], want["receiver"], "{at}");
        assert_eq!(
            operator_matchers(&route["matchers"]),
            strings(&want["matchers"]),
            "{at}"
        );
        assert_eq!(route["continue"], want["continue"], "{at}: continue");
        assert_eq!(route["groupWait"], want["group_wait"], "{at}: group wait");
        assert_eq!(route["repeatInterval"], want["repeat_interval"], "{at}");
    }

    let inhibitions = seq(&spec["inhibitRules"], "inhibitRules");
    let shipped_inhibitions = seq(&shipped["inhibit_rules"], "inhibit_rules");
    assert_eq!(inhibitions.len(), shipped_inhibitions.len());
    for (rule, want) in inhibitions.iter().zip(shipped_inhibitions) {
        assert_eq!(
            operator_matchers(&rule["sourceMatch"]),
            strings(&want["source_matchers"])
        );
        assert_eq!(
            operator_matchers(&rule["targetMatch"]),
            strings(&want["target_matchers"])
        );
        assert_eq!(rule["equal"], want["equal"]);
    }

    // The same receivers; webhooks to the Service at the same paths, with the Secret's
    // webhook token; email where the file has email.
    let secret = kubernetes("secret.example.yaml");
    let service = kubernetes("service.yaml");
    let base = format!(
        "http://{}.monitoring.svc:{}/alertmanager/",
        str_of(&service["metadata"]["name"], "service name"),
        str_of(&service["spec"]["ports"][0]["port"], "service port")
    );
    let receivers = seq(&spec["receivers"], "receivers");
    let shipped_receivers = seq(&shipped["receivers"], "receivers");
    assert_eq!(receivers.len(), shipped_receivers.len());
    for (receiver, want) in receivers.iter().zip(shipped_receivers) {
        let name = str_of(&receiver["name"], "receiver name");
        assert_eq!(receiver["name"], want["name"]);
        let webhooks = receiver["webhookConfigs"].as_array().map_or(0, Vec::len);
        let want_webhooks = want["webhook_configs"].as_array().map_or(0, Vec::len);
        assert_eq!(webhooks, want_webhooks, "{name}: webhooks");
        if webhooks > 0 {
            let webhook = &receiver["webhookConfigs"][0];
            assert_eq!(webhook["url"], format!("{base}{name}"));
            assert_eq!(webhook["sendResolved"], "true");
            let credentials = &webhook["httpConfig"]["authorization"]["credentials"];
            assert_eq!(credentials["name"], secret["metadata"]["name"]);
            assert!(
                secret["stringData"][str_of(&credentials["key"], "key")].is_string(),
                "{name}: the Secret has no {}",
                credentials["key"]
            );
        }
        let emails = strings(
            &receiver["emailConfigs"]
                .as_array()
                .map(|list| list.iter().map(|e| e["to"].clone()).collect())
                .unwrap_or_default(),
        );
        let want_emails = strings(
            &want["email_configs"]
                .as_array()
                .map(|list| list.iter().map(|e| e["to"].clone()).collect())
                .unwrap_or_default(),
        );
        assert_eq!(emails, want_emails, "{name}: email");
    }
}

#[test]
fn the_prometheusrule_is_built_from_rules() {
    let output = Command::new("bash")
        .arg(deploy().join("kubernetes/build-prometheusrule.sh"))
        .output()
        .expect("run bash");
    assert!(
        output.status.success(),
        "build-prometheusrule.sh failed:\n{}",
        output_text(&output)
    );
    let committed = read(&deploy().join("kubernetes/prometheusrule.yaml"));
    assert!(
        String::from_utf8_lossy(&output.stdout) == committed,
        "deploy/kubernetes/prometheusrule.yaml is stale: run \
         deploy/kubernetes/build-prometheusrule.sh > deploy/kubernetes/prometheusrule.yaml"
    );
}

#[test]
fn the_prometheusrule_is_well_formed_and_its_rules_pass_promtool() {
    let path = deploy().join("kubernetes/prometheusrule.yaml");
    let rule = document(&path);
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rule["kind"], "PrometheusRule");
    assert!(rule["metadata"]["name"].is_string());
    let groups = seq(&rule["spec"]["groups"], "spec.groups");
    assert!(!groups.is_empty(), "no rule groups");
    let mut rules = 0;
    for group in groups {
        assert!(group["name"].is_string(), "a group without a name");
        for rule in seq(&group["rules"], "rules") {
            rules += 1;
            assert!(rule["expr"].is_string(), "a rule without expr: {rule}");
            assert!(
                rule["alert"].is_string() != rule["record"].is_string(),
                "a rule is an alert or a recording rule: {rule}"
            );
        }
    }
    let expected: usize = std::fs::read_dir(root().join("rules"))
        .expect("rules/")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml"))
        .map(|path| {
            seq(&document(&path)["groups"], "groups")
                .iter()
                .map(|group| seq(&group["rules"], "rules").len())
                .sum::<usize>()
        })
        .sum();
    assert_eq!(
        rules, expected,
        "every rule of rules/*.yml is in the PrometheusRule"
    );

    // spec is a rule file: cut it out (it is indented by two under `spec:`).
    let Some(promtool) = require_binary("promtool") else {
        return;
    };
    let text = read(&path);
    let spec = text
        .split_once("\nspec:\n")
        .map(|(_, spec)| spec)
        .expect("a spec: line");
    let rule_file: String = spec
        .lines()
        .map(|line| line.strip_prefix("  ").unwrap_or(line))
        .map(|line| format!("{line}\n"))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("spec.yml");
    std::fs::write(&file, rule_file).expect("write spec");
    let output = Command::new(promtool)
        .arg("check")
        .arg("rules")
        .arg(&file)
        .output()
        .expect("run promtool");
    assert!(
        output.status.success(),
        "promtool check rules on the PrometheusRule's spec:\n{}",
        output_text(&output)
    );
}

// ---- systemd ----

#[test]
fn the_systemd_unit_is_hardened() {
    let text = read(&deploy().join("systemd/lookout.service"));
    let directives: Vec<(&str, &str)> = text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.starts_with('['))
        .filter_map(|line| line.split_once('='))
        .collect();
    let values = |key: &str| -> Vec<&str> {
        directives
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, value)| *value)
            .collect()
    };
    let one = |key: &str| -> &str {
        let found = values(key);
        assert_eq!(found.len(), 1, "one {key}= in lookout.service: {found:?}");
        found[0]
    };
    for (key, value) in [
        ("DynamicUser", "yes"),
        ("StateDirectory", "lookout"),
        ("ProtectSystem", "strict"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("Restart", "on-failure"),
    ] {
        assert_eq!(one(key), value, "{key}=");
    }
    assert!(!one("ProtectHome").is_empty());
    assert!(values("SystemCallFilter").contains(&"@system-service"));
    // lookout serves at most half its open-file limit in connections: the limit must
    // leave the default connection cap whole, and systemd must outwait the drain.
    let web = lookout::config::Config::builtin().web;
    let nofile: usize = one("LimitNOFILE")
        .parse()
        .unwrap_or_else(|_| panic!("LimitNOFILE= is one number: {}", one("LimitNOFILE")));
    assert!(
        nofile >= 2 * web.max_connections,
        "LimitNOFILE={nofile} is below twice web.max_connections ({})",
        web.max_connections
    );
    let stop = humantime::parse_duration(one("TimeoutStopSec"))
        .unwrap_or_else(|error| panic!("TimeoutStopSec=: {error}"));
    assert!(
        stop > web.shutdown_timeout,
        "TimeoutStopSec={stop:?} must exceed web.shutdown_timeout ({:?})",
        web.shutdown_timeout
    );
    let exec = one("ExecStart");
    assert!(
        exec.contains("--config /etc/lookout/lookout.yaml")
            && exec.contains("--state-dir /var/lib/lookout"),
        "ExecStart: {exec}"
    );

    // deploy/lookout.yaml's ${CREDENTIALS_DIRECTORY} files are loaded credentials.
    let loaded: BTreeSet<String> = values("LoadCredential")
        .iter()
        .filter_map(|value| value.split_once(':'))
        .map(|(id, _)| id.to_owned())
        .collect();
    assert_eq!(credentials(&read(&deploy().join("lookout.yaml"))), loaded);
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    validate("systemd");
}

// ---- the local script ----

#[test]
fn the_local_script_rewrites_what_it_copies() {
    // run.sh copies prometheus.yml and alertmanager.yml and rewrites the compose hosts
    // and the token path with sed: the strings it rewrites must be there.
    let script = read(&deploy().join("local/run.sh"));
    let prometheus = read(&deploy().join("prometheus/prometheus.yml"));
    for host in [
        "lookout:9788",
        "alertmanager:9093",
        "localhost:9090",
        "/etc/prometheus/rules/",
    ] {
        assert!(
            prometheus.contains(host),
            "prometheus.yml no longer has {host}"
        );
        assert!(
            script.contains(&format!("s#{host}#")),
            "run.sh does not rewrite {host}"
        );
    }
    let alertmanager = read(&root().join("alertmanager/alertmanager.yml"));
    assert!(alertmanager.contains("credentials_file:"));
    assert!(script.contains("credentials_file:"));
    assert!(script.contains("lookout.yaml") && script.contains("trap cleanup EXIT"));
}

/// `deploy/local/run.sh --db-only` against the machine's MariaDB, loading into
/// `database`, with its state under `run_dir`.
fn run_sh_db_only(run_dir: &Path, database: &str) -> Output {
    Command::new("bash")
        .arg(deploy().join("local/run.sh"))
        .arg("--db-only")
        .env("RUN_DIR", run_dir)
        .env("SHOP_DB_NAME", database)
        .output()
        .expect("run deploy/local/run.sh")
}

#[test]
fn the_local_script_never_loads_over_a_database_it_did_not_load() {
    // The default is a database of its own, and the lookout copy points at it.
    let script = read(&deploy().join("local/run.sh"));
    assert!(script.contains("SHOP_DB_NAME=${SHOP_DB_NAME:-lookout_example_shop}"));
    assert!(
        read(&deploy().join("lookout.yaml"))
            .contains("url: mysql://lookout@${SHOP_DB_ADDR}/shop\n"),
        "run.sh rewrites this URL to SHOP_DB_NAME"
    );
    if require_binary("mysql").is_none() {
        return;
    }

    // A database with someone's own table: refused, the table untouched.
    let Some(theirs) = crate::support::db::MariaDb::create() else {
        return;
    };
    theirs.exec("CREATE TABLE customers (id INT); INSERT INTO customers VALUES (7)");
    let run_dir = tempfile::tempdir().expect("temp dir");
    let output = run_sh_db_only(run_dir.path(), &theirs.name);
    let text = output_text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("tables this script did not load"), "{text}");
    assert_eq!(
        theirs.column("SELECT id FROM customers"),
        [Some("7".to_owned())],
        "{text}"
    );
    assert!(
        theirs
            .column("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'users'")
            == [Some("0".to_owned())],
        "nothing was loaded: {text}"
    );

    // An empty database: loaded and marked; loading again is allowed.
    let Some(ours) = crate::support::db::MariaDb::create() else {
        return;
    };
    for round in 1..=2 {
        let output = run_sh_db_only(run_dir.path(), &ours.name);
        assert!(
            output.status.success(),
            "round {round}: {}",
            output_text(&output)
        );
        assert_eq!(
            ours.column("SELECT COUNT(*) FROM lookout_run_sh"),
            [Some(round.to_string())]
        );
    }
    assert_eq!(
        ours.column("SELECT COUNT(*) > 1000 FROM users"),
        [Some("1".to_owned())]
    );
}

#[test]
fn the_ha_overlay_runs_two_replicas_on_the_shared_outbox() {
    let ha = |file: &str| document(&deploy().join("kubernetes-ha").join(file));
    let kustomization = ha("kustomization.yaml");
    let resources = seq(&kustomization["resources"], "resources");
    assert!(
        resources.contains(&"../kubernetes".into()),
        "an overlay of the base"
    );
    assert_eq!(
        kustomization["configMapGenerator"][0]["behavior"],
        "replace"
    );
    let patch = ha("deployment-patch.yaml");
    assert_eq!(patch["spec"]["replicas"], "2");
    assert_eq!(patch["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(
        patch["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], "0",
        "a new pod is ready before an old one goes"
    );
    let volumes = seq(&patch["spec"]["template"]["spec"]["volumes"], "volumes");
    let state = volumes
        .iter()
        .find(|v| v["name"] == "state")
        .expect("state volume");
    assert!(state["emptyDir"].is_object(), "no volume to share: {state}");
    let pdb = ha("pdb.yaml");
    assert_eq!(pdb["kind"], "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["minAvailable"], "1");
    let base = kubernetes("deployment.yaml");
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"], base["spec"]["selector"]["matchLabels"],
        "the budget covers the Deployment's pods"
    );
    // The outbox password: a key of the example Secret, mounted where lookout.yaml reads it.
    let secret = kubernetes("secret.example.yaml");
    assert!(secret["stringData"]["outbox-password"].is_string());
    let config = ha("lookout.yaml");
    assert_eq!(
        config["relay"]["outbox_password_file"],
        "/run/secrets/lookout/outbox-password"
    );
    assert!(
        str_of(&config["relay"]["outbox"], "relay.outbox").starts_with("postgres://"),
        "the shared outbox"
    );
    let sources = seq(
        &volumes
            .iter()
            .find(|v| v["name"] == "secrets")
            .expect("secrets volume")["projected"]["sources"],
        "sources",
    );
    assert!(
        sources
            .iter()
            .any(|source| seq(&source["secret"]["items"], "items")
                .iter()
                .any(|item| item["key"] == "outbox-password")),
        "the Deployment mounts the outbox password"
    );
}
