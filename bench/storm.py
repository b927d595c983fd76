#!/usr/bin/env python3
"""Peak memory of lookout's relay under alert-storm shapes (issue: digest memory).

Starts lookout (LOOKOUT_BIN) with DingTalk channels pointed at a local mock robot that
answers `errcode 0` and counts what it receives, posts one storm shape to the webhook,
waits until the outbox has nothing pending, and reports the process' peak RSS (VmHWM),
the messages the robot received, the most it received in any 60-s window, and whether
every alert was represented (listed or counted in "…另有 N 条告警").

Shapes (SHAPES env, comma-separated; default all):
  storm    2,000 notifications x 3 alerts to one robot (20/min): digests
  big      one ~1 MiB notification (4,499 alerts) to two robots
  digest   90 notifications with 45,070 alerts in all to one robot: one big digest

Prints one `key=value` line per shape for bench/storm.sh.
"""

import http.client
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

LOOKOUT = os.environ["LOOKOUT_BIN"]
TIMEOUT_S = float(os.environ.get("STORM_TIMEOUT", "240"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Robot(http.server.BaseHTTPRequestHandler):
    """A DingTalk robot that accepts everything and remembers when and what."""

    received = []  # (time, path, text)
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            text = json.loads(body).get("markdown", {}).get("text", "")
        except ValueError:
            text = ""
        with Robot.lock:
            Robot.received.append((time.time(), self.path.split("&")[0], text))
        reply = b'{"errcode":0,"errmsg":"ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


def alert(i, run, size, compact=False):
    if compact:  # ~230 bytes: 4,499 of them make a 1 MiB notification
        return {
            "status": "firing",
            "labels": {"alertname": "TxFail", "severity": "critical", "shard": f"{run}-{i}"},
            "annotations": {"summary": f"{i}"},
            "startsAt": "2026-12-01T08:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": f"{i:08x}{run:08x}",
        }
    return {
        "status": "firing",
        "labels": {
            "alertname": "TransactionFailureRate",
            "severity": "critical",
            "instance": f"wallet-{i % 50}.prod:9788",
            "job": "wallet",
            "tx_type": "withdraw",
            "shard": f"{run}-{i}",
        },
        "annotations": {
            "summary": f"Withdrawals failing on shard {i}",
            "description": "x" * size,
        },
        "startsAt": "2026-12-01T08:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": f"http://prometheus:9090/graph?g0.expr=failures%7Bshard%3D%22{i}%22%7D",
        "fingerprint": f"{i:08x}{run:08x}",
    }


def notification(run, n, alerts, size, compact=False):
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="Storm", n="{run}-{n}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "storm",
        "groupLabels": {"alertname": "TransactionFailureRate"},
        "commonLabels": {"alertname": "TransactionFailureRate", "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [alert(n * 100_000 + i, run, size, compact) for i in range(alerts)],
    }


def post_all(port, bodies, threads=4):
    def post(chunk):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        codes = []
        for body in chunk:
            conn.request("POST", "/alertmanager/storm", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            codes.append(response.status)
        conn.close()
        return codes

    chunks = [bodies[i::threads] for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        codes = [c for part in pool.map(post, chunks) for c in part]
    bad = [c for c in codes if c != 200]
    if bad:
        sys.exit(f"webhook refused {len(bad)} of {len(codes)} posts: {sorted(set(bad))}")


def metric(port, name):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def represented(texts):
    """Alerts listed (one fingerprint or shard per alert) plus those counted as omitted."""
    listed = set()
    omitted = 0
    for text in texts:
        listed.update(re.findall(r"\[([0-9a-f]{8})\]", text))  # digest lines
        listed.update(re.findall(r"shard：(\d+-\d+)", text))  # full alert blocks
        omitted += sum(int(n) for n in re.findall(r"另有 (\d+) 条告警", text))
    return len(listed) + omitted


def run_shape(name, robot_port, work):
    Robot.received = []
    robots = {"storm": 1, "big": 2, "digest": 1}[name]
    channels = "\n".join(
        f"  robot{r}:\n    type: dingtalk\n"
        f"    url: http://127.0.0.1:{robot_port}/robot/send?access_token=t{r}\n"
        f"    rate_limit: 20/min\n"
        for r in range(robots)
    )
    config = os.path.join(work, f"{name}.yaml")
    with open(config, "w") as f:
        f.write(
            "host: { enabled: false }\n"
            "web: { max_body_bytes: 2MiB }\n"
            f"channels:\n{channels}\n"
            f"receivers:\n  storm: {{ channels: [{', '.join(f'robot{r}' for r in range(robots))}] }}\n"
        )
    port = free_port()
    state = os.path.join(work, f"state-{name}")
    log = open(os.path.join(work, f"{name}.log"), "w")
    proc = subprocess.Popen(
        [LOOKOUT, "--config", config, "--listen", f"127.0.0.1:{port}", "--state-dir", state,
         "--log.level", "warn"],
        stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.time() + float(os.environ.get("STORM_START_TIMEOUT", "20"))
        while True:
            try:
                metric(port, "lookout_build_info")
                break
            except OSError:
                if time.time() > deadline:
                    sys.exit(f"{name}: lookout did not start; see {log.name}")
                time.sleep(0.05)
        idle = status(proc.pid, "VmRSS")
        run = int(time.time()) & 0xFFFFFF
        if name == "storm":
            bodies = [json.dumps(notification(run, n, 3, 40)).encode() for n in range(2000)]
        elif name == "big":
            bodies = [json.dumps(notification(run, 0, 4499, 0, compact=True)).encode()]
        else:
            bodies = [json.dumps(notification(run, n, 500 + (1 if n < 70 else 0), 10)).encode()
                      for n in range(90)]
        alerts = sum(len(json.loads(b)["alerts"]) for b in bodies)
        started = time.time()
        post_all(port, bodies)
        while time.time() - started < TIMEOUT_S:
            time.sleep(1)
            if metric(port, "lookout_outbox_pending") == 0:
                break
        pending = metric(port, "lookout_outbox_pending")
        peak = status(proc.pid, "VmHWM")
        times = sorted(t for t, _, _ in Robot.received)
        worst = max((sum(1 for u in times if t <= u < t + 60) for t in times), default=0)
        per_robot = robots and max(
            sum(1 for _, path, _ in Robot.received if path.endswith(f"t{r}")) for r in range(robots))
        shown = min(represented([text for _, path, text in Robot.received if path.endswith("t0")]), alerts)
        print(
            f"shape={name} notifications={len(bodies)} alerts={alerts} "
            f"payload_mb={sum(map(len, bodies)) / 1048576:.1f} idle_rss_mb={idle:.1f} "
            f"peak_rss_mb={peak:.1f} messages={len(Robot.received)} max_per_robot={per_robot} "
            f"max_per_60s={worst} represented={shown} pending={int(pending)} "
            f"seconds={time.time() - started:.0f}",
            flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main():
    robot_port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", robot_port), Robot)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    shapes = os.environ.get("SHAPES", "storm,big,digest").split(",")
    with tempfile.TemporaryDirectory() as work:
        for shape in shapes:
            run_shape(shape.strip(), robot_port, work)


if __name__ == "__main__":
    main()
