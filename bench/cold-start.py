#!/usr/bin/env python3
"""Cold start of the signing function: from process start (just before exec) to the first
answered request (GET /api/health -> 200), median of N starts; the bare axum hello binary
(GET /hello) measured the same way, interleaved (function, hello, function, ...).

Each function start gets a fresh SQLite file (schema created at start, as on a first deploy);
the dev secrets folder is created once beforehand and reused. The client polls with a raw
HTTP/1.1 request over a new loopback connection every 0.5 ms. Prints Markdown.

    python3 bench/cold-start.py --bin target/release/cahier-function \
        --hello target/release/examples/hello --n 20
"""
import argparse, json, os, socket, statistics, subprocess, tempfile, time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def answered(port, path):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
            c.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            return c.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def start_and_wait(cmd, port, path, env):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = t0 + 10
        while time.perf_counter() < deadline:
            if answered(port, path):
                return (time.perf_counter() - t0) * 1000
            if p.poll() is not None:
                raise SystemExit(f"{cmd[0]} exited with {p.returncode} before answering")
            time.sleep(0.0005)
        raise SystemExit(f"{cmd[0]} did not answer within 10 s")
    finally:
        p.terminate()
        p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--hello", required=True)
    ap.add_argument("--n", type=int, default=20)
    a = ap.parse_args()
    env = dict(os.environ, RUST_LOG="error")
    with tempfile.TemporaryDirectory() as work:
        manifest = os.path.join(work, "manifest.json")
        base = "http://127.0.0.1"
        with open(manifest, "w") as f:
            json.dump({"version": 1, "site": {
                "base_url": base, "api_url": base + "/api", "origins": [base],
                "default_language": "fr", "languages": ["fr", "en"], "organization": "Bench",
                "captcha_provider": "dev", "captcha_sitekey": "10000000-ffff-ffff-ffff-000000000001",
                "protected_domains": [], "allowed_domains": [], "retention_days": 365,
                "age_recipient": None},
                "petitions": [{"slug": "bench", "languages": ["fr"], "titles": {"fr": "Banc"},
                               "opens_at": None, "closes_at": None, "goal": 1000, "fields": [],
                               "public_signers": False, "newsletter": False,
                               "text_sha256": {}, "consent_sha256": {}}]}, f)
        secrets = os.path.join(work, "secrets")
        fn, hello = [], []
        for i in range(a.n + 1):
            port = free_port()
            cmd = [a.bin, "--listen", f"127.0.0.1:{port}", "--manifest", manifest,
                   "--store", f"sqlite:{work}/s{i}.sqlite3", "--mailer", f"outbox:{work}/outbox",
                   "--dev-secrets", secrets]
            t = start_and_wait(cmd, port, "/api/health", env)
            port = free_port()
            h = start_and_wait([a.hello, f"127.0.0.1:{port}"], port, "/hello", env)
            if i > 0:  # the first start creates the dev secrets: not a cold start to measure
                fn.append(t)
                hello.append(h)
    print(f"{a.n} starts each, interleaved; process start to the first answered request.\n")
    print("| binary | median (ms) | min (ms) | max (ms) |")
    print("|---|---|---|---|")
    for name, v in (("cahier-function (SQLite, fresh file)", fn), ("hello (bare axum)", hello)):
        print(f"| {name} | {statistics.median(v):.1f} | {min(v):.1f} | {max(v):.1f} |")
    print(f"\nFunction / hello (medians): {statistics.median(fn) / statistics.median(hello):.1f}×")


if __name__ == "__main__":
    main()
