#!/usr/bin/env bash
# Wraps the rule groups of rules/*.yml (or *.yaml) into one PrometheusRule manifest on
# stdout, for the Prometheus Operator:
#
#   deploy/kubernetes/build-prometheusrule.sh > deploy/kubernetes/prometheusrule.yaml
#
# prometheusrule.yaml is committed (kustomize cannot run scripts) and tests/it/kit_deploy.rs
# regenerates it and compares, so it cannot drift from rules/. An optional argument names
# another rules directory.
#
# The rule files' text is copied, not re-serialised: comments, block scalars and quoting
# survive. Each file's `groups:` list is re-indented to sit under `spec.groups`. Files
# without a top-level `groups:` key (promtool test files) are skipped; a rule file with
# another top-level key, or a flow-style `groups: [...]`, is an error.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rules_dir=${1:-$here/../../rules}

exec python3 - "$rules_dir" <<'PY'
import pathlib
import re
import sys

rules_dir = pathlib.Path(sys.argv[1])
if not rules_dir.is_dir():
    sys.exit(f"build-prometheusrule.sh: {rules_dir} is not a directory")

ITEM_INDENT = 4  # `spec:` at 0, `groups:` at 2, list items at 4
TOP_KEY = re.compile(r"^([^\s#\-][^:]*):")
GROUPS = re.compile(r"^groups:\s*(#.*)?$")

out = [
    "# Generated from rules/*.yml by deploy/kubernetes/build-prometheusrule.sh: do not edit.",
    "# The Prometheus Operator picks PrometheusRules by its ruleSelector (kube-prometheus-stack:",
    "# the `release` label, unless ruleSelectorNilUsesHelmValues is false).",
    "apiVersion: monitoring.coreos.com/v1",
    "kind: PrometheusRule",
    "metadata:",
    "  name: lookout",
    "  labels:",
    "    app.kubernetes.io/name: lookout",
    "spec:",
]
groups = []


def fail(path, number, message):
    sys.exit(f"build-prometheusrule.sh: {path}:{number}: {message}")


def indent_of(line):
    return len(line) - len(line.lstrip(" "))


for path in sorted(p for p in rules_dir.iterdir() if p.is_file() and p.suffix in (".yml", ".yaml")):
    name = f"rules/{path.name}"
    lines = path.read_text(encoding="utf-8").splitlines()
    keys = [(n, m.group(1)) for n, line in enumerate(lines) if (m := TOP_KEY.match(line))]
    if "groups" not in [key for _, key in keys]:
        print(f"build-prometheusrule.sh: skipping {name}: no top-level `groups:`", file=sys.stderr)
        continue
    for n, key in keys:
        if key != "groups":
            fail(name, n + 1, f"unexpected top-level key `{key}` in a rule file")
    start = next(n for n, key in keys if key == "groups")
    if not GROUPS.match(lines[start]):
        fail(name, start + 1, "write `groups:` as a block list (one `- name:` per group)")
    body = lines[start + 1 :]
    while body and not body[-1].strip():
        body.pop()
    first = next((line for line in body if line.strip() and not line.lstrip().startswith("#")), None)
    if first is None:
        continue  # `groups:` with nothing under it
    if not first.lstrip().startswith("- "):
        fail(name, start + 2, "`groups:` must hold a list")
    base = indent_of(first)
    groups.append(f"{' ' * ITEM_INDENT}# {name}")
    for offset, line in enumerate(body):
        if not line.strip():
            groups.append("")
        elif indent_of(line) >= base:
            groups.append(" " * ITEM_INDENT + line[base:])
        elif line.lstrip().startswith("#"):
            groups.append(" " * ITEM_INDENT + line.lstrip())
        else:
            fail(name, start + 2 + offset, "line is outside the `groups:` list")

if groups:
    out.append("  groups:")
    out.extend(groups)
else:
    out.append("  groups: []")
print("\n".join(out))
PY
