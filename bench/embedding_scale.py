"""Embedding at scale on CPU: products/s by batch size, PyTorch against ONNX Runtime and int8 paths.

    python bench/embedding_scale.py [--products 128] [--batch-sizes 1,8,32,64,128]
        [--retrieval-products 1000] [--repeats 2] [--no-compile] [--model PATH] [--catalog PATH]

No database: the towers alone, on real Myntra products (the shipped default model unless --model).
- Photo decoding (open + RGB) and preprocessing (pad, resize, normalise) are timed apart from the forward.
- Forward passes by batch size, under `torch.inference_mode()` on eval models as mlcore encodes: the photo
  tower in PyTorch (channels-last pixels, mlcore's path) and with its frozen prefix in ONNX Runtime (the
  `ENCODER_RUNTIME=onnx` path); the text tower in PyTorch, in ONNX Runtime (fp32 and dynamic int8) and with
  torch's dynamic int8 Linear layers. Texts are batched by token length as `encode_titles` does.
- Each configuration runs once per repeat, interleaved with the others, and the median is kept: on a
  shared machine only ratios within one run mean anything.
- Equality: cosine of each alternative's vectors against PyTorch's, and text->image R@10 (relevant: the
  same title) on --retrieval-products products with each path, with its standard error.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmarks_file import markdown_table, write_section

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CATALOG = ROOT.parent / "shared" / "datasets" / "myntra" / "catalog.jsonl"
PLOT = ROOT / "bench" / "embedding_scale.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=128, help="products per timed configuration")
    parser.add_argument("--batch-sizes", default="1,8,32,64,128")
    parser.add_argument("--retrieval-products", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile attempt")
    parser.add_argument("--model", help="checkpoint folder (default: the shipped default model)")
    parser.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG)
    args = parser.parse_args()
    batch_sizes = [int(size) for size in args.batch_sizes.split(",")]

    import sys

    sys.path.insert(0, str(ROOT))
    from mlcore.default_model import default_model_path
    from mlcore.embedding import encode_pixels
    from mlcore.image_preprocessing import open_rgb, to_tensor
    from mlcore.inference import Encoder
    from mlcore.metrics import relevance_matrix, retrieval_metrics
    from mlcore.onnx_runtime import onnx_photo_prefix
    from mlcore.product_text import product_text

    load_before = os.getloadavg()[0]
    model_path = Path(args.model) if args.model else default_model_path()
    encoder = Encoder.load(model_path, device="cpu")
    model, tower = encoder.model, encoder.model.image_tower
    threads = torch.get_num_threads()
    count = max(args.products, args.retrieval_products)
    rows = [json.loads(line) for line in args.catalog.read_text().splitlines()[:count]]
    if len(rows) < count:
        raise SystemExit(f"{args.catalog} has {len(rows)} products; ask for at most that many")
    photos = [args.catalog.parent / row["image"] for row in rows]
    texts = [product_text(row) for row in rows]

    # Decoding and preprocessing, per photo, apart from any forward pass.
    started = time.perf_counter()
    decoded = [open_rgb(photo) for photo in photos]
    decode_s = (time.perf_counter() - started) / len(photos)
    started = time.perf_counter()
    pixels = torch.stack([to_tensor(image, tower.image_size, tower.normalisation) for image in decoded])
    preprocess_s = (time.perf_counter() - started) / len(photos)
    del decoded
    channels_last = pixels.contiguous(memory_format=torch.channels_last)
    pixels = pixels[: args.products].clone()  # the NCHW variant's only; frees the rest
    id_lists = model.tokenizer.encode_ids(texts)

    onnx_prefix = onnx_photo_prefix(tower, model_path, torch.device("cpu"))
    if onnx_prefix is None:
        raise SystemExit("onnxruntime is not installed: pip install 'product-search[onnx]'")
    text_runners = {"PyTorch": _torch_text(model)}
    text_notes: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        for name, build in (
            ("ONNX Runtime fp32", lambda: _onnx_text(model, Path(folder), quantise=False, threads=threads)),
            ("ONNX Runtime int8 (dynamic, MatMul)", lambda: _onnx_text(model, Path(folder), True, threads)),
            ("PyTorch int8 (quantize_dynamic, Linear)", lambda: _torch_int8_text(model)),
        ):
            try:
                text_runners[name] = build()
            except Exception as error:  # noqa: BLE001 - an alternative that cannot be built is reported
                text_notes.append(f"{name}: not measured ({type(error).__name__}: {error})")

        photo_runners: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
            "PyTorch (channels-last)": lambda batch: encode_pixels(model, batch),
            "ONNX Runtime prefix + PyTorch tail": lambda batch: encode_pixels(model, batch, onnx_prefix),
        }

        def photo_pass(run: Callable[[torch.Tensor], torch.Tensor], source: torch.Tensor, size: int) -> Any:
            def go() -> torch.Tensor:
                return torch.cat(
                    [run(source[start : start + size]) for start in range(0, args.products, size)]
                )

            return go

        def text_pass(run: Callable[..., torch.Tensor], size: int, limit: int) -> Callable[[], torch.Tensor]:
            return lambda: _encode_texts(run, id_lists[:limit], size, model)

        # Throughput by batch size, configurations interleaved within each repeat.
        timings: dict[tuple[str, str, int], float] = {}
        with torch.inference_mode():
            for size in batch_sizes:
                passes: dict[tuple[str, str, int], Callable[[], Any]] = {}
                for name, run in photo_runners.items():
                    passes[("photo", name, size)] = photo_pass(run, channels_last, size)
                for name, run in text_runners.items():
                    passes[("text", name, size)] = text_pass(run, size, args.products)
                for function in passes.values():
                    function()  # warm-up: first calls allocate and pick kernels for this shape
                samples: dict[tuple[str, str, int], list[float]] = {key: [] for key in passes}
                for _ in range(args.repeats):
                    for key, function in passes.items():
                        started = time.perf_counter()
                        function()
                        samples[key].append((time.perf_counter() - started) / args.products)
                for key, values in samples.items():
                    timings[key] = statistics.median(values)
                print(
                    size,
                    {f"{kind}/{name}": f"{1 / timings[(kind, name, s)]:.1f}/s" for kind, name, s in samples},
                )

            # Cheap variants of the PyTorch photo forward, at one batch size, against the same baseline.
            variant_size = 32 if 32 in batch_sizes else batch_sizes[-1]
            variants: list[list[str]] = []
            baseline = photo_pass(photo_runners["PyTorch (channels-last)"], channels_last, variant_size)
            contiguous = photo_pass(photo_runners["PyTorch (channels-last)"], pixels, variant_size)
            variant_passes: dict[str, Callable[[], Any]] = {
                "PyTorch, channels-last pixels (mlcore's path)": baseline,
                "PyTorch, contiguous (NCHW) pixels": contiguous,
            }
            if args.no_compile:
                variants.append(["torch.compile (inductor, CPU)", "not attempted (--no-compile)", ""])
            else:
                compiled_note, compiled_pass = _compiled_photo(
                    model, channels_last, variant_size, args.products
                )
                variants.append(["torch.compile (inductor, CPU): compile time", compiled_note, ""])
                if compiled_pass is not None:
                    variant_passes["PyTorch, torch.compile (inductor)"] = compiled_pass
            variant_samples: dict[str, list[float]] = {name: [] for name in variant_passes}
            for function in variant_passes.values():
                function()
            for _ in range(args.repeats):
                for name, function in variant_passes.items():
                    started = time.perf_counter()
                    function()
                    variant_samples[name].append((time.perf_counter() - started) / args.products)
            base_s = statistics.median(variant_samples["PyTorch, channels-last pixels (mlcore's path)"])
            for name, values in variant_samples.items():
                seconds = statistics.median(values)
                variants.append([name, f"{1 / seconds:.1f}", f"{base_s / seconds:.2f}"])

            # Equality: vectors and retrieval on the larger set, each path at batch 64.
            n = args.retrieval_products
            photo_vectors = {
                name: torch.cat([run(channels_last[start : start + 64]) for start in range(0, n, 64)]).numpy()
                for name, run in photo_runners.items()
            }
            text_vectors = {
                name: _encode_texts(run, id_lists[:n], 64, model).numpy()
                for name, run in text_runners.items()
            }
    relevant = relevance_matrix(
        [row["title"].lower() for row in rows[:n]], [row["title"].lower() for row in rows[:n]]
    )
    equality: list[list[str]] = []
    reference_photo, reference_text = photo_vectors["PyTorch (channels-last)"], text_vectors["PyTorch"]
    onnx_photo = photo_vectors["ONNX Runtime prefix + PyTorch tail"]
    for label, text_name, photo in (
        ("PyTorch text, PyTorch photo", "PyTorch", reference_photo),
        ("PyTorch text, ONNX Runtime photo", "PyTorch", onnx_photo),
        *(
            (f"{name} text, ONNX Runtime photo", name, onnx_photo)
            for name in text_runners
            if name != "PyTorch"
        ),
    ):
        texts_ = text_vectors[text_name]
        recall = retrieval_metrics(texts_ @ photo.T, relevant)["R@10"]
        standard_error = 100 * np.sqrt(recall / 100 * (1 - recall / 100) / n)
        photo_cos = (photo * reference_photo).sum(axis=1)
        text_cos = (texts_ * reference_text).sum(axis=1)
        equality.append(
            [
                label,
                f"{photo_cos.min():.6f}",
                f"{text_cos.min():.4f} / {text_cos.mean():.4f}",
                f"{recall:.1f} ± {standard_error:.1f}",
            ]
        )
    for row in equality:
        print(row)

    args.load = (load_before, os.getloadavg()[0])
    throughput = _throughput_rows(timings, batch_sizes, photo_runners, text_runners, decode_s + preprocess_s)
    _plot(timings, batch_sizes, decode_s + preprocess_s)
    write_section(
        "embedding-scale",
        _section(
            args, len(rows), threads, decode_s, preprocess_s, throughput, variants, equality, text_notes
        ),
    )


def _encode_texts(
    run: Callable[..., torch.Tensor], id_lists: list[list[int]], size: int, model: Any
) -> torch.Tensor:
    """Texts batched by token length (as mlcore.embedding.encode_titles), vectors in input order."""
    order = sorted(range(len(id_lists)), key=lambda i: len(id_lists[i]))
    output = torch.empty(len(id_lists), model.config.retrieval_dim)
    for start in range(0, len(order), size):
        chunk = order[start : start + size]
        tokens = model.tokenizer.pad([id_lists[i] for i in chunk])
        output[torch.tensor(chunk)] = run(tokens.token_ids, tokens.attention_mask).float()
    return output


class _TextTower(nn.Module):
    def __init__(self, model: Any):
        super().__init__()
        self.model = model

    def forward(self, token_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(token_ids, attention_mask, normalize=True)


def _torch_text(model: Any) -> Callable[..., torch.Tensor]:
    return lambda ids, mask: model.encode_text(ids, mask, normalize=True)


def _torch_int8_text(model: Any) -> Callable[..., torch.Tensor]:
    quantised = copy.deepcopy(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantised.text_tower = torch.ao.quantization.quantize_dynamic(
            quantised.text_tower, {nn.Linear}, dtype=torch.qint8
        )
    return lambda ids, mask: quantised.encode_text(ids, mask, normalize=True)


def _onnx_text(model: Any, folder: Path, quantise: bool, threads: int) -> Callable[..., torch.Tensor]:
    import onnxruntime

    path = folder / "text.onnx"
    if not path.exists():
        example = model.tokenizer(["a navy blue shirt", "shoes"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _TextTower(model).eval(),
                (example.token_ids, example.attention_mask),
                str(path),
                dynamo=False,
                input_names=["token_ids", "attention_mask"],
                output_names=["vectors"],
                dynamic_axes={
                    "token_ids": {0: "batch", 1: "length"},
                    "attention_mask": {0: "batch", 1: "length"},
                    "vectors": {0: "batch"},
                },
                opset_version=17,
            )
    if quantise:
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.quantization.shape_inference import quant_pre_process

        prepared, quantised = folder / "text.pre.onnx", folder / "text.int8.onnx"
        quant_pre_process(str(path), str(prepared), skip_symbolic_shape=True)
        # MatMul only: the quantiser's Gemm rewrite of the projection heads fails ONNX shape inference.
        quantize_dynamic(
            str(prepared), str(quantised), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"]
        )
        path = quantised
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        (vectors,) = session.run(None, {"token_ids": ids.numpy(), "attention_mask": mask.numpy()})
        return torch.from_numpy(vectors)

    return run


def _compiled_photo(
    model: Any, pixels: torch.Tensor, size: int, products: int
) -> tuple[str, Callable[[], Any] | None]:
    """torch.compile of the photo tower, or why it could not be used; its compile time as a note."""
    try:
        compiled = torch.compile(model.image_tower)
        started = time.perf_counter()
        compiled(pixels[:size])
        compile_s = time.perf_counter() - started
    except Exception as error:  # noqa: BLE001 - reported in the table
        return f"failed: {type(error).__name__}: {str(error).splitlines()[0][:120]}", None

    def go() -> torch.Tensor:
        return torch.cat(
            [
                model.retrieval_embedding(compiled(pixels[start : start + size]))
                for start in range(0, products, size)
            ]
        )

    return f"{compile_s:.0f} s (first batch)", go


def _throughput_rows(
    timings: dict[tuple[str, str, int], float],
    batch_sizes: list[int],
    photo_runners: dict[str, Any],
    text_runners: dict[str, Any],
    photo_input_s: float,
) -> list[list[str]]:
    rows = []
    for kind, names in (("photo", photo_runners), ("text", text_runners)):
        for name in names:
            rows.append(
                [f"{kind}: {name}"] + [f"{1 / timings[(kind, name, size)]:.1f}" for size in batch_sizes]
            )
    for label, photo, text in (
        ("product (decode + preprocess + photo + text): PyTorch", "PyTorch (channels-last)", "PyTorch"),
        (
            "product: ONNX Runtime photo prefix, PyTorch text",
            "ONNX Runtime prefix + PyTorch tail",
            "PyTorch",
        ),
    ):
        rows.append(
            [label]
            + [
                f"{1 / (photo_input_s + timings[('photo', photo, size)] + timings[('text', text, size)]):.1f}"
                for size in batch_sizes
            ]
        )
    return rows


def _plot(timings: dict[tuple[str, str, int], float], batch_sizes: list[int], photo_input_s: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for (kind, name), style in {
        ("photo", "PyTorch (channels-last)"): "o-",
        ("photo", "ONNX Runtime prefix + PyTorch tail"): "o--",
        ("text", "PyTorch"): "s-",
        ("text", "ONNX Runtime fp32"): "s--",
    }.items():
        if (kind, name, batch_sizes[0]) in timings:
            axis.plot(
                batch_sizes,
                [1 / timings[(kind, name, s)] for s in batch_sizes],
                style,
                label=f"{kind}: {name}",
            )
    for photo, label in (
        ("PyTorch (channels-last)", "product: PyTorch"),
        ("ONNX Runtime prefix + PyTorch tail", "product: ONNX Runtime photo"),
    ):
        axis.plot(
            batch_sizes,
            [
                1 / (photo_input_s + timings[("photo", photo, s)] + timings[("text", "PyTorch", s)])
                for s in batch_sizes
            ],
            "^-",
            linewidth=2.5,
            label=label,
        )
    axis.set_xscale("log", base=2)
    axis.set_yscale("log")
    axis.set_xlabel("batch size")
    axis.set_ylabel("items / s (one process)")
    axis.set_title(f"Embedding throughput on CPU ({torch.get_num_threads()} torch threads)")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(PLOT, dpi=100)
    plt.close(figure)


def _section(
    args: argparse.Namespace,
    products: int,
    threads: int,
    decode_s: float,
    preprocess_s: float,
    throughput: list[list[str]],
    variants: list[list[str]],
    equality: list[list[str]],
    text_notes: list[str],
) -> str:
    import onnxruntime

    sizes = args.batch_sizes.split(",")
    command = (
        f"`python bench/embedding_scale.py --products {args.products} --batch-sizes {args.batch_sizes} "
        f"--retrieval-products {args.retrieval_products} --repeats {args.repeats}`"
    )
    notes = "".join(f"\n- {note}" for note in text_notes)
    return (
        "## Embedding at scale (CPU)\n\n"
        f"{command}: the default model's towers alone (no database), real Myntra products ({products} read), "
        f"{os.cpu_count()} cores, torch {torch.__version__} with {threads} intra-op threads "
        f"(`torch.get_num_threads()`), onnxruntime {onnxruntime.__version__} (CPU execution provider, as "
        "many threads), `torch.inference_mode()` on eval models. Each figure is the median of "
        f"{args.repeats} passes over {args.products} items, all configurations interleaved in one run: the "
        f"machine is shared (1-minute load average {args.load[0]:.1f} at the start, "
        f"{args.load[1]:.1f} at the end, on these cores), so compare within a column.\n\n"
        f"Photo input, per photo, apart from the forward: decode (open, RGB) {decode_s * 1000:.1f} ms, "
        f"preprocess (pad to square, resize to 224, normalise) {preprocess_s * 1000:.1f} ms: "
        f"{1 / (decode_s + preprocess_s):.0f} photos/s on one core.\n\n"
        "Items/s by batch size (a product = one photo and its text; the product rows add the per-photo "
        "input time):\n\n"
        + markdown_table(["path"] + [f"batch {size}" for size in sizes], throughput)
        + "\n\n![products/s by batch size](bench/embedding_scale.png)\n\n"
        "Cheap variants of the PyTorch photo forward (same run):\n\n"
        + markdown_table(["variant", "photos/s", "x mlcore's path"], variants)
        + f"\n\nEquality on {args.retrieval_products} products (vectors at batch 64; R@10: text->image, "
        "relevant = same title, ± one standard error):\n\n"
        + markdown_table(
            [
                "text path, photo path",
                "photo cosine to PyTorch (min)",
                "text cosine to PyTorch (min / mean)",
                "t2i R@10",
            ],
            equality,
        )
        + notes
        + "\n"
    )


if __name__ == "__main__":
    main()
