"""The serving library stays light: loading the encoder's code pulls in no training code.

`import torch` itself loads tqdm when it is installed (torch.hub's optional progress bar), so tqdm's presence
is compared with what torch and the other serving dependencies load on their own, and a second check runs the
imports with tqdm and matplotlib made unimportable, as on a server that does not install them.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRAINING_SIDE = ["mlcore_train", "tqdm", "matplotlib"]
SERVING_API = "import mlcore.inference, mlcore.evaluation, mlcore.default_model"
SERVING_DEPENDENCIES = "import numpy, PIL.Image, safetensors.torch, tokenizers, torch"

BLOCKER = """
import importlib.abc

class RefuseTrainingPackages(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(f"{{name}} is not installed on this server")
        return None

sys.meta_path.insert(0, RefuseTrainingPackages())
"""


def modules_after(statement: str, blocked: tuple[str, ...] = ()) -> list[str]:
    """Which training-side packages a fresh interpreter has loaded after running `statement`."""
    report = f"print(json.dumps([name for name in {TRAINING_SIDE!r} if name in sys.modules]))"
    blocker = BLOCKER.format(blocked=set(blocked)) if blocked else ""
    code = f"import json, sys\n{blocker}\n{statement}\n{report}"
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_importing_the_serving_api_loads_no_training_code():
    loaded = modules_after(SERVING_API)
    assert "mlcore_train" not in loaded and "matplotlib" not in loaded
    # Whatever of tqdm is there, torch loaded it, not mlcore.
    assert set(loaded) <= set(modules_after(SERVING_DEPENDENCIES))


def test_the_serving_api_imports_where_tqdm_and_matplotlib_are_not_installed():
    assert modules_after(SERVING_API, blocked=("mlcore_train", "tqdm", "matplotlib")) == []


def test_the_probe_sees_training_code_when_it_is_loaded():
    # The checks above could not pass by accident: the trainer loads all three, and needs them.
    assert modules_after("import mlcore_train.trainer") == TRAINING_SIDE
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\n" + BLOCKER.format(blocked={"tqdm"}) + "\nimport mlcore_train.trainer",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode != 0 and "tqdm is not installed" in completed.stderr
