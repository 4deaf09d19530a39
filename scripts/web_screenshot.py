"""Make docs/web.png: the web page during a real run on this machine.

Starts ``painterly serve`` on a free loopback port with a throwaway data folder, opens
the page in Debian's headless Chromium (Playwright drives it), drops in the bundled
Tübingen photo and Starry Night, starts the default settings (512 px; the offline
encoder where no pretrained weights are cached), and takes the screenshot once the run
is ``--at`` of the way through its finest scale. Then cancels the job and stops the server.

    python scripts/web_screenshot.py [--at 0.6] [--out docs/web.png]
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"


def start_server(data: Path) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "painterly", "serve", "--port", "0", "--data-dir", str(data)],
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in server.stderr:  # "painterly: serving http://127.0.0.1:PORT/ (...)"
        found = re.search(r"serving (http://\S+/)", line)
        if found:
            return server, found.group(1)
    raise SystemExit(f"painterly serve exited ({server.wait()}) before it listened")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--at", type=float, default=0.6, help="fraction of the finest scale's steps done"
    )
    parser.add_argument("--out", default=str(ROOT / "docs" / "web.png"))
    args = parser.parse_args()
    from playwright.sync_api import expect, sync_playwright

    with tempfile.TemporaryDirectory() as data, sync_playwright() as p:
        server, base = start_server(Path(data))
        try:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1360, "height": 1020})
            page.goto(base)
            page.set_input_files(
                "#content-file", str(ROOT / "examples/content/tubingen_neckarfront.jpg")
            )
            page.set_input_files(
                "#style-file", str(ROOT / "src/painterly/paintings/van_gogh_starry_night.jpg")
            )
            expect(page.locator("#style-list li")).to_have_count(1)
            page.click("#start")
            steps = int(page.input_value("#opt-steps"))
            status = page.locator("#status")
            expect(status).to_contain_text("step", timeout=120_000)
            while True:  # wait for the wanted step of the finest scale
                page.wait_for_timeout(500)
                text = status.inner_text()
                scale = re.search(r"scale (\d+) of (\d+)", text)
                done = re.search(r"step (\d+) of (\d+)", text)
                finest = not scale or scale.group(1) == scale.group(2)
                if finest and done and int(done.group(1)) >= args.at * int(done.group(2)):
                    break
            expect(page.locator("#live")).to_be_visible()
            page.wait_for_timeout(1500)  # let the chart and the next preview draw
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=args.out)
            print(f"wrote {args.out} at {status.inner_text()!r} ({steps} steps planned)")
            page.click("#cancel")
            browser.close()
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
