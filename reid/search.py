"""`python -m reid.search`: rank a folder of images against one query image with a trained run.

    python -m reid.search --run <run dir | checkpoint | MLflow id> --query img.jpg --gallery folder/ [--topk 10]
                          [--out ranked.png] [--rerank] [--labels auto|market|folder|none]

Images are encoded by :meth:`reid.inference.TrainedRun.extract` and ranked by
the distance the evaluation uses (squared Euclidean on L2-normalised
descriptors, or k-reciprocal re-ranking with the run's k1/k2/lambda). With no
ground truth the picture's frames are neutral. Where the identity can be read
off the paths, same-identity matches are framed green and the others red:
``--labels market`` (and ``auto``, the default, when every file name carries one)
reads Market-style names (``0002_c1s1_000451_03.jpg``); ``--labels folder`` reads
the parent folder's name, as in the ``folder`` dataset's ``query/<id>/``,
``gallery/<id>/`` tree (docs/own_data.md).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from reid.data.images import IMAGE_SUFFIXES, list_images

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

    from reid.inference import TrainedRun

LABEL_SOURCES = ("auto", "market", "folder", "none")
NEUTRAL_COLOR = (150, 150, 150)
CAPTION_HEIGHT = 14


@dataclass
class Match:
    rank: int
    distance: float
    path: Path
    same_identity: bool | None = None  # None: file names carry no identity


@dataclass
class SearchResult:
    query: Path
    gallery_size: int
    matches: list[Match]
    metric: str


def gallery_images(folder: str | Path) -> list[Path]:
    """Every image under the gallery ``folder`` (recursive, hidden entries skipped; reid.data.images), sorted by path.

    An absent folder or one without images is an error naming the folder.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"gallery {root}: no such folder")
    found = list_images(root, recursive=True)
    if not found:
        raise FileNotFoundError(f"gallery {root}: no {'/'.join(IMAGE_SUFFIXES)} images in it or below it")
    return found


def market_identity(path: Path) -> int | None:
    """The pid of a Market-style file name (``0002_c1s1_...`` -> 2), else None."""
    from reid.data.formats.market_style import MARKET_PATTERN

    match = MARKET_PATTERN.match(path.name)
    if match is None:
        return None
    try:
        return int(match.group(1))
    except ValueError:
        return None


def folder_identity(path: Path) -> str:
    """The identity of a file in a ``<split>/<identity>/<image>`` tree: its parent folder's name."""
    return path.parent.name


def identities(query: Path, images: Sequence[Path], labels: str) -> tuple[object, list[object]] | None:
    """(query identity, gallery identities) read as ``labels`` says, or None when the paths carry none.

    ``market`` and ``folder`` insist: a path that does not carry an identity is an error naming it.
    """
    if labels not in LABEL_SOURCES:
        raise ValueError(f"labels must be one of {', '.join(LABEL_SOURCES)}, got {labels!r}")
    if labels == "none":
        return None
    if labels == "folder":
        return folder_identity(query), [folder_identity(p) for p in images]
    q_pid, pids = market_identity(query), [market_identity(p) for p in images]
    if q_pid is not None and all(p is not None for p in pids):
        return q_pid, pids
    if labels == "market":
        bad = query if q_pid is None else next(p for p, pid in zip(images, pids) if pid is None)
        raise ValueError(
            f"--labels market: {bad} is not a Market-style name (<pid>_c<cam>...); try --labels folder or none"
        )
    return None


def rank_gallery(
    run: TrainedRun,
    query: Path,
    gallery: Sequence[Path],
    rerank: bool = False,
    num_workers: int = 0,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, str]:
    """(order, distances in that order, metric description) of ``gallery`` for ``query``.

    Distances follow the run's eval settings (normalisation, flip, re-ranking
    parameters); ties keep gallery order, as the evaluation's stable sort does.
    """
    from reid.engine.evaluator import distances

    protocol = run.protocol.with_changes(rerank=bool(rerank))
    qf = run.extract([query], desc="query")
    gf = run.extract(list(gallery), num_workers=num_workers, progress=progress, desc="gallery")
    row = distances(qf, gf, protocol).block(0, 1)[0]
    order = np.argsort(row, kind="stable")
    return order, row[order], protocol.describe()


def search(
    run: TrainedRun,
    query: str | Path,
    gallery: str | Path,
    topk: int = 10,
    rerank: bool = False,
    num_workers: int = 0,
    progress: bool = False,
    labels: str = "auto",
) -> SearchResult:
    """Top-``topk`` gallery images for ``query``; the query file itself is skipped if it lies in the gallery.

    ``labels`` says where identities are read to mark matches (see :func:`identities`).
    """
    if topk < 1:
        raise ValueError(f"topk must be >= 1, got {topk}")
    query_path = Path(query).expanduser()
    if not query_path.is_file():
        raise FileNotFoundError(f"query {query_path}: no such image file")
    images = [p for p in gallery_images(gallery) if p.resolve() != query_path.resolve()]
    if not images:
        raise FileNotFoundError(f"gallery {gallery}: holds no image other than the query")
    known = identities(query_path, images, labels)  # before encoding: a wrong --labels fails fast
    order, dists, metric = rank_gallery(run, query_path, images, rerank, num_workers, progress)
    matches = [
        Match(i + 1, float(d), images[g], (known[1][g] == known[0]) if known is not None else None)
        for i, (g, d) in enumerate(zip(order[:topk], dists[:topk]))
    ]
    return SearchResult(query_path, len(images), matches, metric)


def _cell(
    path: Path, size: tuple[int, int], color: tuple[int, int, int], border: int, caption: str | None
) -> Image.Image:
    from PIL import Image, ImageDraw, ImageOps

    width, height = size
    cell = Image.new("RGB", (width, height + (CAPTION_HEIGHT if caption is not None else 0)), (255, 255, 255))
    with Image.open(path) as img:
        inner = ImageOps.fit(img.convert("RGB"), (width - 2 * border, height - 2 * border))
    framed = Image.new("RGB", size, color)
    framed.paste(inner, (border, border))
    cell.paste(framed, (0, 0))
    if caption is not None:
        ImageDraw.Draw(cell).text((2, height + 1), caption, fill=(0, 0, 0))
    return cell


def ranked_picture(result: SearchResult, out: str | Path, input_size: tuple[int, int], cell_height: int = 128) -> Path:
    """PNG: the query, a gap, then the top-k matches with their rank and distance underneath.

    Frames: dark for the query; green/red for same/other identity when the file
    names tell, neutral grey otherwise. Cells keep the model's input aspect ratio.
    """
    from PIL import Image

    from reid.evaluation.plots import BACKGROUND, FALSE_COLOR, QUERY_COLOR, TRUE_COLOR

    h, w = input_size
    size = (max(16, round(cell_height * w / h)), cell_height)
    border = 4
    gap = size[0] // 4
    canvas = Image.new("RGB", (size[0] * (len(result.matches) + 1) + gap, cell_height + CAPTION_HEIGHT), BACKGROUND)
    canvas.paste(_cell(result.query, size, QUERY_COLOR, border, "query"), (0, 0))
    for col, m in enumerate(result.matches):
        color = NEUTRAL_COLOR if m.same_identity is None else (TRUE_COLOR if m.same_identity else FALSE_COLOR)
        canvas.paste(_cell(m.path, size, color, border, f"{m.rank}: {m.distance:.3f}"), (size[0] * (col + 1) + gap, 0))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out, format="PNG")
    return out


def format_result(result: SearchResult) -> str:
    labelled = bool(result.matches) and result.matches[0].same_identity is not None
    lines = [
        f"query:   {result.query}",
        f"gallery: {result.gallery_size} images",
        f"ranked by {result.metric}",
        f"{'rank':>4}  {'distance':>10}  " + ("same id  " if labelled else "") + "path",
    ]
    for m in result.matches:
        same = f"{'yes' if m.same_identity else 'no':<7}  " if labelled else ""
        lines.append(f"{m.rank:>4}  {m.distance:>10.4f}  {same}{m.path}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reid.search", description="Rank a folder of images against a query image with a trained run."
    )
    parser.add_argument(
        "--run", required=True, help="training run folder, one of its checkpoint files, or its MLflow run id"
    )
    parser.add_argument("--query", required=True, help="query image")
    parser.add_argument("--gallery", required=True, help="folder searched recursively for .jpg/.jpeg/.png images")
    parser.add_argument("--topk", type=int, default=10, help="matches to print and draw (default 10)")
    parser.add_argument("--out", default="ranked.png", help="ranked-list picture to write (default ranked.png)")
    parser.add_argument(
        "--rerank", action="store_true", help="k-reciprocal re-ranking with the run's eval.k1/k2/lambda_value"
    )
    parser.add_argument("--labels", choices=LABEL_SOURCES, default="auto",
                        help="where identities are read to mark matches: Market-style file names (auto: when all "
                             "names are), the parent folder (folder dataset trees), or none (default auto)")
    parser.add_argument(
        "--checkpoint", default=None, help="a checkpoint file or name in <run>/checkpoints (default: newest stage 2)"
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--num-workers", type=int, default=0, help="image decoding workers for the gallery")
    parser.add_argument("--tracking-uri", default=None, help="MLflow store for a run id (default sqlite:///<project>/mlflow.db)")
    parser.add_argument("--progress", action="store_true", help="show a progress bar while encoding the gallery")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status 0 on success, 2 with a one-line message for a bad path, run or argument."""
    from reid.data.errors import DatasetError
    from reid.inference import RunLoadError, load_run, locate_run

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.topk < 1:
            raise ValueError(f"--topk must be >= 1, got {args.topk}")
        locate_run(args.run, args.tracking_uri)  # cheap checks first: a wrong path fails before the model loads
        query = Path(args.query).expanduser()
        if not query.is_file():
            raise FileNotFoundError(f"query {query}: no such image file")
        gallery_images(args.gallery)
        run = load_run(args.run, args.checkpoint, device=args.device, tracking_uri=args.tracking_uri)
        result = search(run, query, args.gallery, args.topk, args.rerank, args.num_workers, args.progress, args.labels)
        print(f"run:     {run.describe()}")
        print(format_result(result))
        out = ranked_picture(result, args.out, run.input_size)
        print(f"wrote {out}")
    except (FileNotFoundError, RunLoadError, DatasetError, ValueError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
