"""Memory of a web process that serves the encoder: import the serving API, load the shipped default model on
CPU, encode one text query and one photo, then report the peak RSS and how many modules were loaded.

    python bench/serving_memory.py [--root PATH] [--repeat N]

Each run is a fresh interpreter (peak RSS only grows, so one process cannot measure two things). `--root`
points at another checkout of this project (e.g. a `git worktree` of an older commit) to measure its code
with the same Python. Target: at most 1.2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_MB = 1200

# Runs in the child: only what a web worker does with the encoder, nothing else imported first.
CHILD = """
import json, resource, sys
from mlcore.inference import Encoder
from mlcore.default_model import default_model_path
from PIL import Image, ImageDraw

encoder = Encoder.load(default_model_path(), device="cpu")
photo = Image.new("RGB", (300, 400), (255, 255, 255))
ImageDraw.Draw(photo).rectangle((40, 60, 260, 340), fill=(20, 40, 120))
text_vector = encoder.encode_texts(["navy blue shirt"])
photo_vector = encoder.encode_images([photo])
assert text_vector.shape == photo_vector.shape == (1, encoder.dim)
print(json.dumps({
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux reports KiB
    "modules": len(sys.modules),
    "loaded": sorted(name for name in ("mlcore_train", "tqdm", "matplotlib") if name in sys.modules),
    "mlcore_modules": sorted(name for name in sys.modules if name.split(".")[0] == "mlcore"),
}))
"""


def measure(root: Path) -> dict:
    environment = {**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    completed = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=root, env=environment, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise SystemExit(f"the serving process failed in {root}:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose mlcore is measured")
    parser.add_argument("--repeat", type=int, default=1, help="fresh processes to run (median reported)")
    args = parser.parse_args()
    runs = [measure(args.root.resolve()) for _ in range(args.repeat)]
    peak = statistics.median(run["peak_rss_mb"] for run in runs)
    last = runs[-1]
    print(f"code: {args.root.resolve()}")
    each = ", ".join(f"{run['peak_rss_mb']:.0f}" for run in runs)
    print(f"peak RSS {peak:.0f} MB (runs: {each})")
    print(f"modules loaded {last['modules']}, of them mlcore.*: {len(last['mlcore_modules'])}")
    print(f"  {' '.join(last['mlcore_modules'])}")
    print(f"training-side modules loaded: {', '.join(last['loaded']) or 'none'}")
    print(f"target <= {TARGET_MB} MB: {'met' if peak <= TARGET_MB else 'MISSED'}")


if __name__ == "__main__":
    main()
