"""An optional ONNX Runtime path for the photo trunk on CPU.

The trunk prefix (stem and every block the model does not train) is most of a photo's compute, and
ONNX Runtime's CPU kernels run it several times faster than PyTorch's on the Lite0 trunk (BENCHMARKS.md,
"Embedding at scale"). The tail, the pooling and the heads stay in PyTorch, so the vectors differ from
PyTorch's only by float rounding.

The exported graph is built from the loaded checkpoint on first use, never downloaded, and kept under
`$MLCORE_CACHE_DIR/onnx/<checkpoint digest>/` (default `~/.cache/mlcore`), written atomically so that
several workers starting at once never read half a file. Without onnxruntime installed (`pip install
product-search[onnx]`) the encoder logs why and stays on PyTorch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mlcore.image_tower import ImageTower

logger = logging.getLogger(__name__)

RUNTIMES = ("torch", "onnx")
# Bumped when what is exported changes, so older cached graphs are not reused.
EXPORT_FORMAT = "photo-prefix-1"
ONNX_OPSET = 17


def mlcore_cache_dir() -> Path:
    return Path(os.environ.get("MLCORE_CACHE_DIR") or Path.home() / ".cache" / "mlcore")


def checkpoint_digest(folder: str | Path) -> str:
    """sha256 of a checkpoint's weights and config: a retrained model gets its own exported graphs."""
    digest = hashlib.sha256(EXPORT_FORMAT.encode())
    for name in ("config.json", "model.safetensors"):
        with open(Path(folder) / name, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:20]


class _PrefixModule(nn.Module):
    def __init__(self, tower: ImageTower):
        super().__init__()
        self.tower = tower

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.tower.forward_prefix(pixels)


def export_photo_prefix(tower: ImageTower, path: Path) -> Path:
    """Write the tower's frozen prefix as an ONNX graph with a dynamic batch axis, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    module = _PrefixModule(tower).eval()
    example = torch.zeros(2, 3, tower.image_size, tower.image_size)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".onnx.part")
    os.close(handle)
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter warns that it is deprecated in favour of the dynamo one, which
            # needs onnxscript; this one needs nothing beyond torch and exports the trunk exactly.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                (example,),
                temporary,
                dynamo=False,
                input_names=["pixels"],
                output_names=["prefix_maps"],
                dynamic_axes={"pixels": {0: "batch"}, "prefix_maps": {0: "batch"}},
                opset_version=ONNX_OPSET,
            )
        os.chmod(temporary, 0o644)  # mkstemp makes it private; workers of other users read it
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


class OnnxPhotoPrefix:
    """Runs the exported prefix: (batch, 3, size, size) pixels -> (batch, C, h, w) float32 maps."""

    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # As many threads as torch uses, so a worker sized by torch's settings is not oversubscribed.
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        self.path = path
        self.session: Any = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        batch = pixels.detach().to("cpu", torch.float32).contiguous().numpy()
        (maps,) = self.session.run(None, {"pixels": batch})
        return torch.from_numpy(maps)


def onnx_photo_prefix(
    tower: ImageTower, checkpoint_folder: str | Path, device: torch.device
) -> OnnxPhotoPrefix | None:
    """The ONNX Runtime prefix of this checkpoint's photo tower, exported on first use; None (with a log
    line saying why) where it cannot serve, and the encoder then stays on PyTorch."""
    if device.type != "cpu":
        logger.info("Encoder runtime 'onnx' is a CPU path; on %s the model runs in PyTorch", device)
        return None
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        logger.warning(
            "Encoder runtime 'onnx' was asked for but onnxruntime is not installed "
            "(pip install 'product-search[onnx]'); encoding photos with PyTorch"
        )
        return None
    path = mlcore_cache_dir() / "onnx" / checkpoint_digest(checkpoint_folder) / "photo_prefix.onnx"
    if not path.exists():
        logger.info("Exporting the photo trunk of %s to %s (once per checkpoint)", checkpoint_folder, path)
        export_photo_prefix(tower, path)
    return OnnxPhotoPrefix(path)
