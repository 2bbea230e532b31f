"""Gallery commands: enroll, people, calibrate, eval."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from facestream.app.cli.app import DEFAULT_PROCESSES, app, audited, progress, say, settings_of
from facestream.config import Settings
from facestream.errors import FacestreamError
from facestream.models.curation.audit import digest
from facestream.models.store.gallery import Gallery
from facestream.server import connect, connect_index


def _gallery(s: Settings) -> Gallery:
    return Gallery(connect_index(s), s)


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
    from facestream.models.curation.enroll import Options, enroll_paths

    s = settings_of(ctx)
    bar, tick = progress(None, "enroll")
    with bar:
        summary = enroll_paths(_gallery(s), paths, s, person, name, Options(every, max_per_video, allow_several=main_face),
                               workers, tick, bar.reset)
    for line in summary.lines():
        typer.echo(line)
    for pid, n in summary.enrolled.items():
        audited(s, "enroll", pid, f"{n} face(s)")
    if summary.interrupted:
        raise typer.Exit(130)
    if not summary.enrolled:
        raise FacestreamError("no face was enrolled (see the skipped files above)")


people_app = typer.Typer(help="List, show, rename and delete enrolled people.", no_args_is_help=True)
app.add_typer(people_app, name="people")


@people_app.command("list")
def people_list(ctx: typer.Context) -> None:
    """Every enrolled person: id, faces, name; then how strangers are kept from being named at this size."""
    s = settings_of(ctx)
    gallery = _gallery(s)
    people = gallery.people()
    for p in people:
        typer.echo(f"{p.person_id:32} {p.faces:5d} faces  {p.name}")
    typer.echo(f"{len(people)} people", err=True)
    typer.echo(f"decision for {sum(p.faces for p in people)} faces: {_operating_point(gallery, s)}", err=True)


def _operating_point(gallery: Gallery, s: Settings) -> str:
    return _policy(gallery, s).describe()


def _policy(gallery: Gallery, s: Settings):  # noqa: ANN202 - a Policy (imported late: the CLI starts fast)
    """The policy the workers decide with for this gallery (the model its vectors were stamped with)."""
    from facestream.models.evaluation.identify import policy_of_prefix

    return policy_of_prefix(gallery.r, s)


@people_app.command("show")
def people_show(ctx: typer.Context, person_id: str) -> None:
    """One person's name, metadata and face count, and how near a face must come to be named them: the threshold,
    or tighter if the site's strangers come nearest to them more often than chance (a 'wolf')."""
    s = settings_of(ctx)
    gallery = _gallery(s)
    p = gallery.person(person_id)
    policy = _policy(gallery, s)
    factor, nearest, expected = policy.site.wolves.get(person_id, (1.0, 0, 0.0))
    typer.echo(json.dumps({"person_id": p.person_id, "name": p.name, "faces": p.faces, "meta": p.meta,
                           "created_ms": p.created_ms, "naming": {
                               "named_within": round(policy.limit(person_id), 4), "threshold": round(policy.threshold, 4),
                               "strangers_nearest": nearest, "expected_by_chance": expected, "wolf_factor": factor,
                               "learned_strangers": policy.site.used}}, indent=2))


@people_app.command("faces")
def people_faces(ctx: typer.Context, person_id: str) -> None:
    """A person's enrolled faces: number, where each came from, its quality, and how many strangers of the cohort
    come within naming distance of it (a face that attracts strangers is the usual cause of a wrong name)."""
    from facestream.models.curation.suggest import Advisor

    s = settings_of(ctx)
    gallery = _gallery(s)
    advisor = Advisor(gallery.r, s, _policy(gallery, s))
    for f in advisor.faces(person_id):
        q = f.face.quality
        typer.echo(f"{f.face.face:4d}  {q.get('size', '?'):>4}px sharp {q.get('sharpness', '?'):>5} "
                   f"yaw {q.get('yaw', '?'):>6}  strangers near {f.strangers_near:2d}  {f.face.source}")
    say(f"a face is named {person_id} within {advisor.policy.limit(person_id):.4f}; "
        f"remove one with: facestream people remove-face {person_id} N")


@people_app.command("remove-face")
def people_remove_face(ctx: typer.Context, person_id: str, face: int) -> None:
    """Remove one enrolled face (its number from `people faces`): a bad photo, without deleting the person."""
    s = settings_of(ctx)
    gallery = _gallery(s)
    source = gallery.remove_face(person_id, face)
    audited(s, "remove-face", person_id, f"face {face} ({source})")
    typer.echo(f"removed face {face} of {person_id}; {gallery.count_faces(person_id)} left")


@people_app.command("rename")
def people_rename(ctx: typer.Context, person_id: str, name: str) -> None:
    """Change a person's display name."""
    _gallery(settings_of(ctx)).rename(person_id, name)
    audited(settings_of(ctx), "rename", person_id, name)
    typer.echo(f"{person_id} is now {name!r}")


@people_app.command("delete")
def people_delete(ctx: typer.Context, person_id: str) -> None:
    """Remove a person: their face vectors, and every sighting of them (as `facestream forget` does)."""
    from facestream.models.curation.library import forget

    s = settings_of(ctx)
    _gallery(s).person(person_id)  # a clear error for a person who is not enrolled
    out = forget(connect_index(s), s, person_id, connect(s))
    audited(s, "forget", digest(person_id), f"{out.faces} faces, {out.sightings} sightings")
    typer.echo(f"deleted {person_id}: {out.faces} face vectors, {out.sightings} sightings")


@people_app.command("clear")
def people_clear(ctx: typer.Context, yes: Annotated[bool, typer.Option("--yes", help="Really drop them.")] = False) -> None:
    """Remove every enrolled person and every stored vector (cohort, sightings, visitors) and the model stamp:
    before re-enrolling with another embedding model."""
    from facestream.models.curation.library import clear_vectors

    if not yes:
        raise FacestreamError("people clear drops every enrolled person and stored face vector; add --yes to do it")
    s = settings_of(ctx)
    n = clear_vectors(connect_index(s), s)
    audited(s, "clear", "*", f"{n} people")
    typer.echo(f"removed {n} people and every stored vector under {s.key_prefix!r}")


@app.command()
def calibrate(
    ctx: typer.Context,
    path: Annotated[Optional[Path], typer.Argument(help="pairs.csv (img_a,img_b,same,fold); with --identify a folder "
                                                   "of gallery/, probes/ and strangers (default: faces_dir).")] = None,
    identify: Annotated[bool, typer.Option("--identify", help="Fit the identification policy for --far and store it "
                                           "(with its cohort) where the workers read it.")] = False,
    far: Annotated[float, typer.Option(min=0.0001, max=0.5, help="With --identify: share of strangers that may be named.")] = 0.01,
    workers: Annotated[int, typer.Option(help="Processes embedding images.")] = DEFAULT_PROCESSES,
    live: Annotated[bool, typer.Option("--live", help="Pairs: embed like live frames (no fallback detector, probe views).")] = False,
) -> None:
    """Pairs: the one-to-one threshold (k-fold accuracy, FAR/FRR). --identify: the open-set policy workers use."""
    s = settings_of(ctx)
    if identify:
        _calibrate_identify(s, path or s.faces_dir, far, workers)
        return
    from facestream.models.evaluation.evaluate import pair_images, verify_pairs

    pairs = path or s.faces_dir / "pairs.csv"
    if not pairs.is_file():
        raise typer.BadParameter(f"{pairs} not found", param_hint="PATH")
    bar, tick = progress(len(pair_images(pairs)), "embed")
    with bar:
        v = verify_pairs(pairs, s, workers, not live, tick)
    for line in v.lines():
        typer.echo(line)
    typer.echo("this is the best threshold for one-to-one checks; for naming among many enrolled people run "
               "`facestream calibrate --identify`, which stores the policy the workers use")


def _faces_root(root: Path) -> Path:
    if not (root / "gallery").is_dir() or not (root / "probes").is_dir():
        raise typer.BadParameter(f"{root} needs gallery/ and probes/ folders", param_hint="FACES")
    return root


def _images(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file() and p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def _calibrate_identify(s: Settings, root: Path, far: float, workers: int) -> None:
    from facestream.models.evaluation.identify import calibrate as fit_policy

    bar, tick = progress(_images(_faces_root(root)), "calibrate")
    with bar:
        c = fit_policy(connect_index(s), root, s, far, workers, tick)
    for line in c.lines(far):
        typer.echo(line)
    typer.echo(f"stored: {c.policy.to_json()} and {c.result.cohort} cohort faces; workers use it within 5 s")


@app.command("eval")
def eval_cmd(
    ctx: typer.Context,
    faces: Annotated[Optional[Path], typer.Argument(help="Folder with gallery/, probes/ (and pairs.csv); default: faces_dir.")] = None,
    pairs: Annotated[bool, typer.Option(help="Also run pair verification on pairs.csv.")] = True,
    distractors: Annotated[bool, typer.Option("--distractors", help="Also enroll the strangers' third part as extra "
                                              "people (a larger gallery, same policy).")] = False,
    visitors: Annotated[bool, typer.Option("--visitors", help="Instead: play every photo as a stranger (nobody "
                                           "enrolled) and score the visitor grouping and search.")] = False,
    visitor_distance: Annotated[Optional[list[float]], typer.Option(help="With --visitors: distances to try "
                                                                    "(default: the setting).")] = None,
    workers: Annotated[int, typer.Option(help="Processes embedding images.")] = DEFAULT_PROCESSES,
) -> None:
    """Accuracy of the pipeline's own path: verification + open-set identification with the policy in force."""
    from facestream.models.evaluation.identify import collect, policy_in_force

    s = settings_of(ctx)
    root = _faces_root(faces or s.faces_dir)
    if visitors:
        from facestream.models.evaluation.visitors import evaluate

        bar, tick = progress(_images(root), "visitors")
        with bar:
            report = evaluate(connect_index(s), s, root, workers, visitor_distance or [s.visitor_distance], tick)
        for line in report.lines():
            typer.echo(line)
        return
    if pairs and (root / "pairs.csv").is_file():
        ctx.invoke(calibrate, ctx=ctx, path=root / "pairs.csv", workers=workers, live=False)
    client = connect_index(s)
    bar, tick = progress(_images(root), "identify")
    with bar:
        probes = collect(client, root, s, workers, distractors, tick)
    policy = policy_in_force(client, s, probes.gallery_faces)
    for line in probes.score(policy).lines(policy):
        typer.echo(line)
