//! The documentation a newcomer follows: the LICENSE file is the license Cargo.toml
//! names; every Markdown link stays inside the repository and points at a file (and a
//! heading) that exists; the README's prerequisites state the MSRV of Cargo.toml; the
//! YAML of the README's quickstart and of docs/runbook.md passes the checker of the
//! program that reads it (`lookout check-config`, `promtool check config`, `amtool
//! check-config`).

use crate::support::markdown::anchor;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::require_binary;
use regex::Regex;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
}

fn output_text(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The value of `key = "…"` in Cargo.toml's [package].
fn cargo_package_value(key: &str) -> String {
    let pattern = Regex::new(&format!(r#"(?m)^{key}\s*=\s*"([^"]+)""#)).expect("regex");
    pattern
        .captures(&read(&root().join("Cargo.toml")))
        .map(|captures| captures[1].to_owned())
        .unwrap_or_else(|| panic!("Cargo.toml has no {key}"))
}

/// The Markdown documents of the repository (not the seeds of other projects).
fn documents() -> Vec<PathBuf> {
    let mut found = vec![
        root().join("README.md"),
        root().join("ARCHITECTURE.md"),
        root().join("deploy/README.md"),
        root().join("bench/README.md"),
        root().join("examples/shop/README.md"),
    ];
    let docs = std::fs::read_dir(root().join("docs")).expect("read docs/");
    found.extend(
        docs.map(|entry| entry.expect("entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "md")),
    );
    found.sort();
    for path in &found {
        assert!(path.is_file(), "{} is missing", path.display());
    }
    found
}

/// `text` without fenced code blocks and inline code spans: the prose, where a URL is a
/// link.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push_str(line);
            out.push('\n');
        }
    }
    let inline = Regex::new(r"`[^`\n]*`").expect("regex");
    inline.replace_all(&out, " ").into_owned()
}

fn anchors(markdown: &str) -> Vec<String> {
    prose(markdown)
        .lines()
        .filter(|line| line.starts_with('#'))
        .map(|line| anchor(line.trim_start_matches('#')))
        .collect()
}

#[test]
fn the_license_file_is_the_license_cargo_toml_names() {
    let license = cargo_package_value("license");
    let text = read(&root().join("LICENSE"));
    match license.as_str() {
        "Apache-2.0" => {
            let head: Vec<&str> = text.lines().take(2).map(str::trim).collect();
            assert_eq!(head, ["Apache License", "Version 2.0, January 2004"]);
            assert!(text.contains("TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION"));
            assert!(
                text.contains("END OF TERMS AND CONDITIONS"),
                "the whole text"
            );
        }
        other => panic!("Cargo.toml's license {other}: check LICENSE by hand and teach this test"),
    }
}

#[test]
fn prose_drops_code() {
    let text = "a `https://x` b\n```\nhttps://y\n```\nc";
    assert_eq!(prose(text), "a   b\nc\n");
    assert_eq!(
        anchor("Quickstart with your own database and robot"),
        "quickstart-with-your-own-database-and-robot"
    );
}

#[test]
fn every_link_stays_inside_the_repository_and_resolves() {
    let link = Regex::new(r"\]\(([^)\s]+)\)").expect("regex");
    let repo = root().canonicalize().expect("repository root");
    let mut problems = Vec::new();
    let mut links = 0;
    for path in documents() {
        let name = path
            .strip_prefix(root())
            .unwrap_or(&path)
            .display()
            .to_string();
        let text = prose(&read(&path));
        for word in ["http://", "https://", "mailto:", "../shared", "/work/"] {
            if text.contains(word) {
                problems.push(format!(
                    "{name}: `{word}` in prose (a link outside the repository)"
                ));
            }
        }
        for captures in link.captures_iter(&text) {
            links += 1;
            let target = &captures[1];
            let (file, fragment) = target.split_once('#').unwrap_or((target, ""));
            if target.contains("://") || file.starts_with('/') {
                problems.push(format!("{name}: {target} is outside the repository"));
                continue;
            }
            let resolved = if file.is_empty() {
                path.clone()
            } else {
                path.parent()
                    .expect("a document has a directory")
                    .join(file)
            };
            let Ok(resolved) = resolved.canonicalize() else {
                problems.push(format!("{name}: {target} does not exist"));
                continue;
            };
            if !resolved.starts_with(&repo) {
                problems.push(format!("{name}: {target} leaves the repository"));
                continue;
            }
            if !fragment.is_empty() && !anchors(&read(&resolved)).iter().any(|a| a == fragment) {
                problems.push(format!("{name}: {target}: no heading #{fragment}"));
            }
        }
    }
    assert!(links >= 5, "only {links} links found");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The text of the README section `## {title}`, up to the next `## ` heading.
fn readme_section(title: &str) -> String {
    let readme = read(&root().join("README.md"));
    let heading = format!("## {title}");
    let mut lines = readme.lines().skip_while(|line| *line != heading);
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("README.md has no section {title:?}"));
    let mut section = format!("{first}\n");
    for line in lines.take_while(|line| !line.starts_with("## ")) {
        section.push_str(line);
        section.push('\n');
    }
    section
}

#[test]
fn the_prerequisites_state_the_msrv_a_c_compiler_and_root_for_ci() {
    let section = readme_section("Prerequisites");
    let msrv = cargo_package_value("rust-version");
    for needed in [
        format!("Rust ≥ {msrv}"),
        "rustup".to_owned(),
        "C compiler".to_owned(),
        "build-essential".to_owned(),
        "cargo build --release".to_owned(),
        "**root**".to_owned(),
        ".ci/".to_owned(),
    ] {
        assert!(
            section.contains(&needed),
            "Prerequisites lacks {needed:?}:\n{section}"
        );
    }
}

/// The fenced ```yaml blocks of `text` whose first line is `# {name}`.
fn yaml_blocks<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let block = Regex::new(r"(?s)```yaml\n(.*?)```").expect("regex");
    block
        .captures_iter(text)
        .map(|captures| captures.get(1).expect("group").as_str())
        .filter(|body| body.lines().next() == Some(&format!("# {name}")))
        .collect()
}

fn check_lookout_config(text: &str, dir: &Path) -> Output {
    let path = dir.join("lookout.yaml");
    std::fs::write(&path, text).expect("write lookout.yaml");
    Command::new(env!("CARGO_BIN_EXE_lookout"))
        .arg("check-config")
        .arg(&path)
        .env_clear()
        .env("DINGTALK_TOKEN", "x")
        .output()
        .expect("run lookout check-config")
}

#[test]
fn the_quickstarts_lookout_yaml_passes_check_config() {
    let section = readme_section("Quickstart with your own database and robot");
    let blocks = yaml_blocks(&section, "lookout.yaml");
    assert_eq!(blocks.len(), 1, "one lookout.yaml in the quickstart");
    let dir = tempfile::tempdir().expect("temp dir");
    let etc = dir.path().join("etc");
    std::fs::create_dir(&etc).expect("mkdir");
    for secret in ["webhook-token", "db-password", "dingtalk-secret"] {
        assert!(
            blocks[0].contains(&format!("/etc/lookout/{secret}")),
            "{secret}"
        );
        std::fs::write(etc.join(secret), "not-a-secret\n").expect("write secret");
    }
    let text = blocks[0]
        .replace("/etc/lookout/", &format!("{}/", etc.display()))
        .replace(
            "/var/lib/lookout",
            &dir.path().join("state").display().to_string(),
        );
    for receiver in ["critical", "high", "warning", "info"] {
        assert!(
            text.contains(&format!("\n  {receiver}: ")),
            "receiver {receiver}"
        );
    }
    let output = check_lookout_config(&text, dir.path());
    assert!(output.status.success(), "{}", output_text(&output));

    // The checker is not a rubber stamp: a misspelt key fails.
    let output = check_lookout_config(&text.replace("secret_file:", "secret_fil:"), dir.path());
    assert!(!output.status.success(), "{}", output_text(&output));
}

#[test]
fn the_quickstarts_prometheus_and_alertmanager_snippets_pass_their_checkers() {
    let section = readme_section("Quickstart with your own database and robot");
    if let Some(promtool) = require_binary("promtool") {
        let blocks = yaml_blocks(&section, "prometheus.yml");
        assert_eq!(blocks.len(), 1, "one prometheus.yml");
        // Pointed at the kit's rules, which promtool checks too.
        let text = blocks[0].replace(
            "/etc/prometheus/rules/",
            &format!("{}/", root().join("rules").display()),
        );
        assert_ne!(text, blocks[0], "the rules path is there");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("prometheus.yml");
        std::fs::write(&path, &text).expect("write");
        let output = Command::new(&promtool)
            .args(["check", "config"])
            .arg(&path)
            .output()
            .expect("run promtool");
        let described = output_text(&output);
        assert!(output.status.success(), "{described}");
        assert!(
            described.contains("host.yml"),
            "the rules were checked: {described}"
        );
    }
    if let Some(amtool) = require_binary("amtool") {
        let blocks = yaml_blocks(&section, "alertmanager.yml");
        assert_eq!(blocks.len(), 1, "one alertmanager.yml");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("alertmanager.yml");
        std::fs::write(&path, blocks[0]).expect("write");
        let output = Command::new(&amtool)
            .arg("check-config")
            .arg(&path)
            .output()
            .expect("run amtool");
        assert!(output.status.success(), "{}", output_text(&output));
        let shipped = read(&root().join("alertmanager/alertmanager.yml"));
        for url in Regex::new(r"/alertmanager/[a-z]+")
            .expect("regex")
            .find_iter(blocks[0])
        {
            assert!(
                shipped.contains(url.as_str()),
                "{} is not a receiver of the kit",
                url.as_str()
            );
        }
    }
}

#[test]
fn the_runbooks_queries_pass_check_config() {
    let runbook = read(&root().join("docs/runbook.md"));
    let block = Regex::new(r"(?s)```yaml\n(queries:.*?)```").expect("regex");
    let queries = block
        .captures(&runbook)
        .expect("docs/runbook.md has a queries: block")[1]
        .to_owned();
    let rules = read(&root().join("rules/business.yml"));
    for metric in [
        "shop_user_level_upgrades_1h",
        "shop_withdrawals_pending",
        "shop_withdrawals_pending_oldest_age_seconds",
    ] {
        assert!(
            queries.contains(&format!("name: {metric},")),
            "{metric} defined"
        );
        assert!(
            rules.contains(metric),
            "{metric} used by rules/business.yml"
        );
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let text = format!(
        "state_dir: {}\ndatabases:\n  shop: {{ url: 'mysql://lookout@127.0.0.1:3306/shop' }}\n{queries}",
        dir.path().join("state").display()
    );
    let output = check_lookout_config(&text, dir.path());
    assert!(output.status.success(), "{}", output_text(&output));
}
