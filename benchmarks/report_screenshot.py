"""Regenerate the README's screenshot of an HTML report of the shipped sample data.

    pip install '.[report]'            # matplotlib draws the figures; Pillow comes with it
    python benchmarks/report_screenshot.py [--scheme light|dark] [--out docs/images/report.png]

Runs ``losscli eval sample_data/regression.parquet --report report.html`` in a temporary
directory, takes a screenshot of the top of the page with headless Chromium (``chromium`` on
PATH), and writes it as a palette PNG (small enough to keep in the repository).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "report.png")
    ap.add_argument("--scheme", choices=["light", "dark"], default="light")
    ap.add_argument("--sample", default="regression", help="which sample_data/*.parquet")
    ap.add_argument("--width", type=int, default=900)
    ap.add_argument("--height", type=int, default=1500)
    ap.add_argument("--colors", type=int, default=96, help="palette size of the PNG")
    args = ap.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which(
        "google-chrome")
    if browser is None:
        print("report_screenshot: chromium is not on PATH", file=sys.stderr)
        return 2
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "sample_data").symlink_to(ROOT / "sample_data")
        subprocess.run([sys.executable, "-m", "losscli", "eval",
                        f"sample_data/{args.sample}.parquet", "--report", "report.html", "-q"],
                       cwd=work, check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})  # this checkout's code
        shot = work / "shot.png"
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--force-device-scale-factor=1", f"--window-size={args.width},{args.height}",
               f"--screenshot={shot}", (work / "report.html").as_uri()]
        if args.scheme == "dark":
            cmd.insert(1, "--force-dark-mode")
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        image = Image.open(shot).convert("RGB")
        small = image.quantize(colors=args.colors, method=Image.Quantize.MEDIANCUT)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        small.save(args.out, optimize=True)
    print(f"{args.out}: {args.out.stat().st_size:,} bytes, {args.width}x{args.height}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
