"""Soak test of ``painterly serve``: many small jobs, with uploads and event streams
alongside, against a real server process on loopback; does its memory stay flat?

Starts ``python -m painterly serve`` on 127.0.0.1 (any free port) with an empty weights
cache, so jobs run the offline encoder, and drives it with ``--clients`` threads that
each upload nothing, submit a job, follow it over server-sent events to its end and
download and check the result (a PNG of the expected size whose settings name the
requested steps and seed); one more thread uploads a fresh image and fetches its
thumbnail every ``--upload-every`` seconds. Stops after ``--jobs`` jobs or
``--max-minutes``, whichever comes first. Prints jobs per minute, the server's resident
memory at the start (after one warm-up job), the middle and the end, and every error.

    python benchmarks/soak_server.py                      # 200 jobs of 64 px, 3 steps
    python benchmarks/soak_server.py --jobs 50 --max-minutes 3
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
from PIL import Image

HOST = "127.0.0.1"


def rss_mb(pid: int) -> float | None:
    """Resident memory of process ``pid``: psutil where installed, else /proc."""
    try:
        import psutil
    except ImportError:
        pass
    else:
        return psutil.Process(pid).memory_info().rss / 2**20
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, AttributeError):
        return None


def png(seed: int, width: int = 96, height: int = 64) -> bytes:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    img = Image.fromarray(coarse).resize((width, height), Image.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


class Client:
    def __init__(self, port: int):
        self.port = port
        self.origin = f"http://{HOST}:{port}"

    def request(self, method: str, path: str, body=None, headers=None):
        conn = http.client.HTTPConnection(HOST, self.port, timeout=120)
        try:
            headers = dict(headers or {})
            if method == "POST":
                headers["Origin"] = self.origin
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def upload(self, data: bytes, name: str) -> str:
        status, raw = self.request("POST", f"/api/uploads?name={name}", data)
        if status != 201:
            raise RuntimeError(f"upload {name}: {status} {raw[:200]!r}")
        return json.loads(raw)["id"]

    def follow(self, job_id: str) -> dict:
        """The job's last event, read over server-sent events."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=300)
        last = None
        try:
            conn.request("GET", f"/api/jobs/{job_id}/events")
            resp = conn.getresponse()
            for line in resp:
                if line.startswith(b"data:"):
                    last = json.loads(line[5:])
                    if last["status"] in ("done", "cancelled", "failed"):
                        break
        finally:
            conn.close()
        return last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--clients", type=int, default=3, help="threads submitting jobs")
    parser.add_argument("--upload-every", type=float, default=1.0, metavar="SECONDS")
    parser.add_argument("--max-minutes", type=float, default=8.0)
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="painterly-soak-")
    env = dict(os.environ, PAINTERLY_CACHE=os.path.join(tmp, "cache"))  # no weights: offline
    server = subprocess.Popen(
        [sys.executable, "-m", "painterly", "serve", "--port", "0", "--data-dir", tmp],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    errors: list[str] = []
    try:
        match = re.search(rf"http://{re.escape(HOST)}:(\d+)/", server.stderr.readline())
        if not match:
            print("the server did not start", file=sys.stderr)
            return 1
        client = Client(int(match.group(1)))
        said: list[str] = []  # the server's stderr: shown, but only failures count
        threading.Thread(target=lambda: said.extend(server.stderr), daemon=True).start()
        content, style = client.upload(png(1), "photo.png"), client.upload(png(2), "style.png")
        expected = (args.size, round(args.size * 64 / 96))

        def one_job(seed: int) -> None:
            body = {
                "content": content,
                "styles": [{"id": style}],
                "preset": "offline",
                "options": {"size": args.size, "steps": args.steps, "seed": seed},
            }
            status, raw = client.request(
                "POST", "/api/jobs", json.dumps(body), {"Content-Type": "application/json"}
            )
            if status != 201:
                raise RuntimeError(f"job {seed}: {status} {raw[:200]!r}")
            job = json.loads(raw)
            final = client.follow(job["id"])
            if final is None or final["status"] != "done":
                raise RuntimeError(f"job {seed} ended {final and final['status']}: {final}")
            status, data = client.request("GET", f"/api/jobs/{job['id']}/result")
            img = Image.open(io.BytesIO(data))
            settings = json.loads(img.text["painterly:settings"])
            if status != 200 or img.size != expected or settings["steps"] != args.steps:
                raise RuntimeError(f"job {seed}: wrong result {status} {img.size} {settings}")
            if settings["seed"] != seed:
                raise RuntimeError(f"job {seed}: result of seed {settings['seed']}")

        one_job(0)  # warm-up: the first job loads libraries and fills caches
        rss = {"start": rss_mb(server.pid)}
        started = time.monotonic()
        deadline = started + 60 * args.max_minutes
        lock = threading.Lock()
        counts = {"next": 1, "done": 0, "uploads": 0}
        samples = [(0, rss["start"])]  # (jobs done, server RSS) after each job
        stop = threading.Event()

        def submitter() -> None:
            while not stop.is_set() and time.monotonic() < deadline:
                with lock:
                    seed = counts["next"]
                    if seed > args.jobs:
                        return
                    counts["next"] += 1
                try:
                    one_job(seed)
                except Exception as err:  # noqa: BLE001 - count it, keep soaking
                    errors.append(str(err))
                with lock:
                    counts["done"] += 1
                    samples.append((counts["done"], rss_mb(server.pid)))

        def uploader() -> None:
            n = 100
            while not stop.wait(args.upload_every):
                n += 1
                try:
                    upload_id = client.upload(png(n, 400, 300), f"extra{n}.png")
                    status, _ = client.request("GET", f"/api/uploads/{upload_id}/thumb")
                    if status != 200:
                        raise RuntimeError(f"thumb of upload {n}: {status}")
                    counts["uploads"] += 1
                except Exception as err:  # noqa: BLE001
                    errors.append(str(err))

        side = threading.Thread(target=uploader, daemon=True)
        side.start()
        workers = [threading.Thread(target=submitter) for _ in range(args.clients)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        stop.set()
        side.join(30)
        minutes = (time.monotonic() - started) / 60
        rss["end"] = rss_mb(server.pid)
        done = counts["done"]
        rss["middle"] = samples[min(len(samples) - 1, done // 2)][1]
        print(
            f"soak: {done} jobs of {args.size} px, {args.steps} steps (offline encoder) in "
            f"{minutes:.1f} min: {done / minutes:.1f} jobs/minute, with {args.clients} "
            f"clients following events and {counts['uploads']} extra uploads"
        )
        if done < args.jobs:
            print(f"soak: stopped at the {args.max_minutes} minute bound, {args.jobs} asked")
        shown = {k: f"{v:.0f} MB" if v is not None else "unknown" for k, v in rss.items()}
        print(
            f"server RSS: start {shown['start']}, middle ({done // 2} jobs) "
            f"{shown['middle']}, end {shown['end']}"
        )
        if rss["start"] is not None and rss["end"] is not None:
            print(f"server RSS growth: {rss['end'] - rss['start']:+.0f} MB")
        failures = [ln.strip() for ln in said if "Error" in ln or "Traceback" in ln]
        errors += [f"server: {ln}" for ln in failures]
        print(f"errors: {len(errors)}")
        for err in errors[:20]:
            print(f"  {err}")
        return 1 if errors else 0
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(main())
