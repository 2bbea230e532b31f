"""Naming commands: the cohort (faces of people never enrolled) and feedback on named faces."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer

from facestream.app.cli.app import DEFAULT_PROCESSES, app, progress, settings_of
from facestream.errors import FacestreamError
from facestream.server import connect, connect_index

cohort_app = typer.Typer(help="The cohort: faces of people who are never enrolled, which the decision compares "
                         "every match with (vectors only; no image is kept).", no_args_is_help=True)
app.add_typer(cohort_app, name="cohort")


@cohort_app.command("add")
def cohort_add(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Folders or images of people who will not be enrolled.")],
    workers: Annotated[int, typer.Option(help="Processes analysing files.")] = DEFAULT_PROCESSES,
) -> None:
    """Embed photos of strangers into the cohort (each file gives its main face, quality-gated)."""
    from facestream.models.curation.enroll import Item, Options, analyze_all
    from facestream.models.store.cohort import Cohort

    s = settings_of(ctx)
    files = sorted(f for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())
    if not files:
        raise FacestreamError(f"no files under {', '.join(map(str, paths))}")
    items = [Item("cohort", "cohort", f) for f in files]
    bar, tick = progress(len(items), "cohort")
    with bar:
        outcomes = list(analyze_all(items, s, Options(allow_several=True), workers, tick))
    faces = [o.faces[0] for o in outcomes if o.faces]
    for o in outcomes:
        if o.skipped:
            typer.echo(f"  skipped {o.item.path}: {o.skipped}")
    n = Cohort(connect_index(s), s).add([replace(f, source=f"cohort:{f.source}") for f in faces])
    typer.echo(f"added {n} faces to the cohort from {len(files)} files")
    if not n:
        raise FacestreamError("no face was added (see the skipped files above)")


@cohort_app.command("show")
def cohort_show(ctx: typer.Context) -> None:
    """How many cohort faces there are, by where they came from."""
    from collections import Counter

    from facestream.models.store.cohort import Cohort

    s = settings_of(ctx)
    by = Counter(src.split(":", 1)[0] for _, src in Cohort(connect_index(s), s).sources())
    for kind, n in by.most_common():
        typer.echo(f"{kind:12} {n:6d} faces")
    typer.echo(f"{sum(by.values())} cohort faces", err=True)


@cohort_app.command("remove")
def cohort_remove(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="Remove the faces whose source starts with this (cohort:, calibrate:, "
                                          "feedback:, or a longer prefix).")],
) -> None:
    """Remove cohort faces by source."""
    from facestream.models.store.cohort import Cohort

    s = settings_of(ctx)
    typer.echo(f"removed {Cohort(connect_index(s), s).remove(source)} cohort faces")


@app.command()
def feedback(
    ctx: typer.Context,
    face: Annotated[str, typer.Argument(help="RESULT_ID#N: a results entry id and the face's index in it.")],
    not_: Annotated[Optional[str], typer.Option("--not", help="The face is not this person (it joins the cohort).")] = None,
    is_: Annotated[Optional[str], typer.Option("--is", help="The face is this person (it joins their gallery).")] = None,
) -> None:
    """Correct a decision: "this was not X" or "this was X"."""
    from facestream.models.curation.feedback import FaceRef, embed_face, is_person, not_person
    from facestream.models.vision.analyzer import FaceAnalyzer

    if (not_ is None) == (is_ is None):
        raise typer.BadParameter("give exactly one of --not PERSON or --is PERSON")
    s = settings_of(ctx)
    client = connect_index(s)
    entry, named = embed_face(connect(s), s, FaceAnalyzer(s), FaceRef.parse(face))
    if not_ is not None:
        not_person(client, s, entry, not_)
        typer.echo(f"{face} (named {named}) is not {not_}: it joined the cohort")
    else:
        is_person(client, s, entry, is_)
        typer.echo(f"{face} (named {named}) added to {is_}'s gallery")
