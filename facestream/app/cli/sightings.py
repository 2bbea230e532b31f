"""What the cameras saw: search by face, visitors (strangers grouped), and forgetting someone."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer

from facestream.app.cli.app import app, audited, say, settings_of
from facestream.config import Settings
from facestream.errors import FacestreamError
from facestream.keys import Keys
from facestream.models.curation.audit import digest
from facestream.models.curation.library import since_ms
from facestream.records import Sighting
from facestream.server import connect, connect_index

visitors_app = typer.Typer(help="Strangers the cameras keep seeing, grouped into visitors (v-000123): list, "
                           "show (with the nearest enrolled people), name, not, merge.", no_args_is_help=True)
app.add_typer(visitors_app, name="visitors")


def when(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _thumb_folder(s: Settings, given: Path | None) -> Path:
    """Where thumbnails go: the folder the user named, else ``<data_dir>/thumbs`` (never the current folder)."""
    folder = given if given is not None else s.data_dir / "thumbs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _thumb_file(folder: Path, sighting: Sighting | None) -> Path | str:
    """Write a sighting's thumbnail into ``folder``; its path, or "-" if it has none (expired meanwhile)."""
    if sighting is None or not sighting.thumb:
        return "-"
    path = folder / f"{sighting.sighting_id}.jpg"
    path.write_bytes(sighting.thumb)
    return path


@app.command()
def search(
    ctx: typer.Context,
    photo: Annotated[Optional[Path], typer.Argument(help="A photo of the face to look for.")] = None,
    sighting: Annotated[Optional[str], typer.Option(help="Look for the face of this sighting instead.")] = None,
    since: Annotated[Optional[str], typer.Option(help="Only sightings this recent: 30m, 24h, 7d.")] = None,
    camera: Annotated[Optional[str], typer.Option(help="Only sightings on this camera.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Sightings to list at most.")] = 20,
    max_distance: Annotated[Optional[float], typer.Option(help="Squared L2 cut (default search_max_distance).")] = None,
    thumbs: Annotated[Optional[Path], typer.Option(
        help="Folder the listed sightings' thumbnails are written to (default: <data_dir>/thumbs).")] = None,
) -> None:
    """Every time a face was seen: a timeline of the matching sightings (time, camera, who, distance, thumbnail)."""
    from facestream.models.curation.library import find, photo_vector, sighting_vector
    from facestream.models.store.sightings import load

    s = settings_of(ctx)
    if (photo is None) == (sighting is None):
        raise FacestreamError("give a PHOTO or --sighting ID (one of them)")
    r = connect_index(s)
    vector = photo_vector(photo, s) if photo is not None else sighting_vector(r, s, sighting or "")
    hits = find(r, s, vector, limit, since_ms(since), camera, max_distance)
    thumbs = _thumb_folder(s, thumbs)
    keys = Keys(s.key_prefix)
    for h in sorted(hits, key=lambda h: h.sighting.ts_ms):
        x = h.sighting
        path = _thumb_file(thumbs, load(r.execute_command, keys, x.sighting_id))
        typer.echo(f"{when(x.ts_ms)}  {x.camera:12} {x.who:24} d={h.distance:.3f}  {x.sighting_id}  {path}")
    say(f"{len(hits)} sighting(s) within {max_distance or s.search_max_distance} of the face")


@visitors_app.command("list")
def visitors_list(
    ctx: typer.Context,
    since: Annotated[Optional[str], typer.Option(help="Only visitors seen this recently: 30m, 24h, 7d.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
) -> None:
    """Visitors seen most recently: id, last seen, looks, cameras."""
    from facestream.models.curation.library import visitors_of

    s = settings_of(ctx)
    found = visitors_of(connect_index(s), s).recent(limit, since_ms(since) or 0)
    for v in found:
        typer.echo(f"{v.visitor_id}  last {when(v.last_ms)}  first {when(v.first_ms)}  {v.looks:5d} looks  "
                   f"{','.join(v.cameras)}")
    say(f"{len(found)} visitor(s)")


@visitors_app.command("show")
def visitors_show(
    ctx: typer.Context, visitor: str,
    thumbs: Annotated[Optional[Path], typer.Option(
        help="Folder their thumbnails are written to (default: <data_dir>/thumbs).")] = None,
) -> None:
    """One visitor and their sightings (thumbnails written to --thumbs)."""
    from facestream.models.curation.library import visitors_of
    from facestream.models.curation.suggest import Advisor
    from facestream.models.evaluation.identify import policy_of_prefix
    from facestream.models.store.sightings import labelled, load
    from facestream.models.store.visitors import missing

    s = settings_of(ctx)
    r = connect_index(s)
    v = visitors_of(r, s).get(visitor)
    if v is None:
        raise FacestreamError(missing(visitor))
    typer.echo(f"{v.visitor_id}: {v.looks} looks, first {when(v.first_ms)}, last {when(v.last_ms)}, "
               f"cameras {','.join(v.cameras)}")
    keys = Keys(s.key_prefix)
    thumbs = _thumb_folder(s, thumbs)
    for sid in sorted(labelled(r.execute_command, keys, "visitor", visitor)):
        x = load(r.execute_command, keys, sid)
        if x is None:
            continue
        path = _thumb_file(thumbs, x)
        typer.echo(f"  {when(x.ts_ms)}  {x.camera:12} {x.reason:16} {x.quality}  {path}")
    suggestions, _ = Advisor(r, s, policy_of_prefix(r, s)).visitor(visitor)
    typer.echo("nearest enrolled people:" if suggestions else "nobody enrolled comes near")
    for x in suggestions:
        typer.echo(f"  {x.person_id:32} distance {x.distance:.4f} (named within {x.named_within:.4f}): {x.blocked}  "
                   f"{x.name}")


@visitors_app.command("not")
def visitors_not(ctx: typer.Context, visitor: str, person_id: str) -> None:
    """Say a visitor is not PERSON_ID: their best looks join the cohort (faces like them are left unnamed, not
    named PERSON_ID) and PERSON_ID leaves their suggestions."""
    from facestream.models.curation.suggest import not_person

    s = settings_of(ctx)
    added = not_person(connect_index(s), s, visitor, person_id)
    audited(s, "not", person_id, f"{visitor} is not them: {added} look(s) to the cohort")
    typer.echo(f"{visitor} is not {person_id}: {added} look(s) joined the cohort")


@visitors_app.command("name")
def visitors_name(
    ctx: typer.Context, visitor: str,
    new: Annotated[Optional[str], typer.Option("--new", help="Enroll them as a new person with this name.")] = None,
    as_: Annotated[Optional[str], typer.Option("--as", help="Add them to this enrolled person.")] = None,
    person_id: Annotated[Optional[str], typer.Option(help="With --new: the person id (default: from the name).")] = None,
) -> None:
    """Enroll a visitor's best diverse views as a person: their next appearance is named."""
    from facestream.models.curation.library import name_visitor, person_id_for

    if (new is None) == (as_ is None):
        raise FacestreamError('give --new "Name" or --as PERSON (one of them)')
    s = settings_of(ctx)
    pid = as_ or person_id or person_id_for(new or "")
    done = name_visitor(connect_index(s), s, visitor, pid, new)
    audited(s, "name", done.person_id, f"from {visitor}: {done.enrolled} face(s)")
    typer.echo(f"{visitor} is now {done.person_id}: {done.enrolled} face(s) enrolled, "
               f"{done.relabelled} sighting(s) relabelled")


@visitors_app.command("merge")
def visitors_merge(ctx: typer.Context, into: str, other: str) -> None:
    """Fold visitor OTHER into INTO (one stranger seen as two)."""
    from facestream.models.curation.library import visitors_of

    if into == other:
        raise FacestreamError("merge two different visitors")
    s = settings_of(ctx)
    try:
        moved = visitors_of(connect_index(s), s).merge(into, other)
    except ValueError as e:
        raise FacestreamError(str(e)) from None
    audited(s, "merge", into, f"{other} merged in")
    typer.echo(f"merged {other} into {into}: {moved} sighting(s) relabelled")


@app.command()
def forget(ctx: typer.Context, who: Annotated[str, typer.Argument(help="A person id or a visitor id (v-000123).")]) -> None:
    """Erase a person or visitor: sightings (thumbnails, vectors), gallery faces, visitor record, presence."""
    from facestream.models.curation.library import forget as erase

    s = settings_of(ctx)
    out = erase(connect_index(s), s, who, connect(s))
    audited(s, "forget", digest(who), f"{out.faces} faces, {out.sightings} sightings")
    typer.echo(f"forgot {who}: {out.sightings} sighting(s), {out.faces} gallery face(s)"
               f"{', the visitor record' if out.visitor else ''}, present on {out.presence} camera(s), "
               f"{out.entries} results/events/audit entries naming them")
