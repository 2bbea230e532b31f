"""Gallery commands: enroll, people, calibrate, eval."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from facestream.app.cli.app import DEFAULT_PROCESSES, app, progress, settings_of
from facestream.config import Settings
from facestream.errors import FacestreamError
from facestream.server import connect
from models.gallery import Gallery


def _gallery(s: Settings) -> Gallery:
    return Gallery(connect(s), s)


@app.command()
def enroll(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Folders of <Person>/ images or videos; or files with --person.")],
    person: Annotated[Optional[str], typer.Option(help="Person id for every given file/folder.")] = None,
    name: Annotated[Optional[str], typer.Option(help="Display name (default: the id / folder name).")] = None,
    main_face: Annotated[bool, typer.Option("--main-face", help="Images with several faces: take the one nearest the centre.")] = False,
    every: Annotated[float, typer.Option(help="Videos: seconds between sampled frames.")] = 0.2,
    max_per_video: Annotated[int, typer.Option(help="Videos: keep at most this many diverse faces.")] = 15,
    workers: Annotated[int, typer.Option(help="Processes analysing files.")] = DEFAULT_PROCESSES,
) -> None:
    """Enroll faces from folders, images and videos into the gallery (progress bar + per-file summary)."""
    from models.enroll import Options, enroll_paths

    s = settings_of(ctx)
    bar, tick = progress(None, "enroll")
    with bar:
        summary = enroll_paths(_gallery(s), paths, s, person, name, Options(every, max_per_video, allow_several=main_face),
                               workers, tick, bar.reset)
    for line in summary.lines():
        typer.echo(line)
    if summary.interrupted:
        raise typer.Exit(130)
    if not summary.enrolled:
        raise FacestreamError("no face was enrolled (see the skipped files above)")


people_app = typer.Typer(help="List, show, rename and delete enrolled people.", no_args_is_help=True)
app.add_typer(people_app, name="people")


@people_app.command("list")
def people_list(ctx: typer.Context) -> None:
    """Every enrolled person: id, faces, name."""
    people = _gallery(settings_of(ctx)).people()
    for p in people:
        typer.echo(f"{p.person_id:32} {p.faces:5d} faces  {p.name}")
    typer.echo(f"{len(people)} people", err=True)


@people_app.command("show")
def people_show(ctx: typer.Context, person_id: str) -> None:
    """One person's name, metadata and face count."""
    p = _gallery(settings_of(ctx)).person(person_id)
    typer.echo(json.dumps({"person_id": p.person_id, "name": p.name, "faces": p.faces, "meta": p.meta,
                           "created_ms": p.created_ms}, indent=2))


@people_app.command("rename")
def people_rename(ctx: typer.Context, person_id: str, name: str) -> None:
    """Change a person's display name."""
    _gallery(settings_of(ctx)).rename(person_id, name)
    typer.echo(f"{person_id} is now {name!r}")


@people_app.command("delete")
def people_delete(ctx: typer.Context, person_id: str) -> None:
    """Remove a person and every face vector of theirs."""
    n = _gallery(settings_of(ctx)).delete(person_id)
    typer.echo(f"deleted {person_id} and {n} face vectors")


@app.command()
def calibrate(
    ctx: typer.Context,
    pairs: Annotated[Optional[Path], typer.Argument(help="pairs.csv: img_a,img_b,same,fold (default: faces_dir's).")] = None,
    workers: Annotated[int, typer.Option(help="Processes embedding images.")] = DEFAULT_PROCESSES,
    live: Annotated[bool, typer.Option("--live", help="Embed like live frames (no fallback detector, 1 view).")] = False,
) -> None:
    """Compute match_threshold from labelled pairs (k-fold): prints accuracy, threshold, FAR/FRR."""
    from models.evaluate import pair_images, verify_pairs

    s = settings_of(ctx)
    pairs = pairs or s.faces_dir / "pairs.csv"
    if not pairs.is_file():
        raise typer.BadParameter(f"{pairs} not found", param_hint="PAIRS")
    bar, tick = progress(len(pair_images(pairs)), "embed")
    with bar:
        v = verify_pairs(pairs, s, workers, not live, tick)
    for line in v.lines():
        typer.echo(line)
    typer.echo("this is the best threshold for one-to-one checks; identification against many enrolled people "
               f"needs a lower one plus a margin (defaults {Settings.default('match_threshold')} / "
               f"{Settings.default('match_margin')}): measure yours with `facestream eval`, "
               "then set FACESTREAM_MATCH_THRESHOLD / FACESTREAM_MATCH_MARGIN")


@app.command("eval")
def eval_cmd(
    ctx: typer.Context,
    faces: Annotated[Optional[Path], typer.Argument(help="Folder with gallery/, probes/ (and pairs.csv); default: faces_dir.")] = None,
    pairs: Annotated[bool, typer.Option(help="Also run pair verification on pairs.csv.")] = True,
    workers: Annotated[int, typer.Option(help="Processes embedding images.")] = DEFAULT_PROCESSES,
) -> None:
    """Accuracy of the pipeline's own detect/embed/match path: verification + open-set identification."""
    from models.evaluate import identify

    s = settings_of(ctx)
    root = faces or s.faces_dir
    if not (root / "gallery").is_dir() or not (root / "probes").is_dir():
        raise typer.BadParameter(f"{root} needs gallery/ and probes/ folders", param_hint="FACES")
    if pairs and (root / "pairs.csv").is_file():
        ctx.invoke(calibrate, ctx=ctx, pairs=root / "pairs.csv", workers=workers, live=False)
    n = sum(1 for d in ("gallery", "probes") for p in (root / d).rglob("*") if p.is_file())
    bar, tick = progress(n, "identify")
    with bar:
        res = identify(connect(s), root / "gallery", root / "probes", s, workers, tick)
    for line in res.lines(s.match_threshold, s.match_margin):
        typer.echo(line)
