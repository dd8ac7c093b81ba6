"""`shipway new`, `shipway check` and `shipway update`: parse, call shipway.templates, render."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from shipway.cli.common import fail
from shipway.errors import ShipwayError
from shipway.templates import QUESTIONS, Question, check_project, create_project, update_project
from shipway.templates.choices import check_answers
from shipway.templates.scaffold import missing_requirements, train_project
from shipway.templates.update import UNDO

__all__ = ["check", "new", "update"]


def _metavar(question: Question) -> str:
    return "[" + "|".join(question.values) + "]"


@click.command()
@click.argument("name")
@click.option("--library", metavar=_metavar(QUESTIONS[0]), help="The ML library the model uses (default sklearn).")
@click.option("--input", "input_kind", metavar=_metavar(QUESTIONS[1]), help="What a request carries (default text).")
@click.option(
    "--output", "output_kind", metavar=_metavar(QUESTIONS[2]), help="What the service answers (default label)."
)
@click.option("--yes", "-y", is_flag=True, help="Ask nothing: take the default of every choice not given as a flag.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    help="Create the project folder NAME in this folder (default: the current one).",
)
@click.option("--template", help="Another copier template (a folder or git URL) to use instead of shipway's own.")
@click.option(
    "--train/--no-train",
    default=True,
    help="Train the baseline model once the project exists, when its libraries are installed (default: train).",
)
def new(
    name: str,
    library: str | None,
    input_kind: str | None,
    output_kind: str | None,
    yes: bool,
    directory: Path,
    template: str | None,
    train: bool,
) -> None:
    """Create the service project NAME: service.py, shipway.toml, data.py, train.py, tests and more.

    Asks for the library, the input and the output in a terminal; flags answer them for scripts."""
    given = {"library": library, "input": input_kind, "output": output_kind}
    try:
        check_answers({k: v for k, v in given.items() if v is not None})
        asked = _ask(given) if not yes and sys.stdin.isatty() else given
        answers = check_answers({k: v or _default(k, asked) for k, v in asked.items()})
        scaffold = create_project(name, answers, directory, template=template)
    except ShipwayError as err:
        fail(err)
    where = scaffold.path
    click.echo(
        f"created {where} from shipway template {scaffold.template_version or '(unversioned)'}: "
        f"{answers['library']}, {answers['input']} in, {answers['output']} out"
    )
    for note in scaffold.notes:
        click.echo(f"note: {note}")
    trained = False
    if train and not template:
        missing = missing_requirements(answers["library"])
        if missing:
            click.echo(
                f"not trained: this Python lacks {', '.join(missing)}. Install the project's requirements "
                f"(pip install -r {where / 'requirements.txt'}), then run `python train.py` in {where}."
            )
        else:
            click.echo("training the baseline model (python train.py)...")
            result = train_project(where)
            if result.returncode != 0:
                click.echo(result.stdout + result.stderr, err=True)
                fail(
                    f"train.py failed in {where} (exit {result.returncode}); the project is there, fix and rerun it.", 1
                )
            trained = True
            click.echo("  " + "\n  ".join(result.stdout.strip().splitlines()))
    click.echo("\nnext:")
    click.echo(f"  cd {where}")
    if not trained:
        click.echo("  python train.py             # build the dataset, train the baseline into artifacts/")
    click.echo("  shipway serve .             # http://127.0.0.1:8000/predict")
    click.echo("  make test                   # shipway check ., then the project's tests")
    click.echo("Then replace the baseline: data.py (your data), train.py fit(), service.py predict().")


def _default(key: str, answers: dict[str, str | None]) -> str:
    if key == "input" and answers.get("library") == "sentence-embeddings":
        return "text"
    return next(q.default for q in QUESTIONS if q.key == key)


def _ask(given: dict[str, str | None]) -> dict[str, str | None]:
    answers = dict(given)
    for question in QUESTIONS:
        if answers.get(question.key) is not None:
            continue
        if question.key == "input" and answers.get("library") == "sentence-embeddings":
            answers["input"] = "text"
            click.echo("input: text (sentence-embeddings embeds text)")
            continue
        click.echo(question.prompt)
        for choice in question.choices:
            click.echo(f"  {choice.value:<20} {choice.help}")
        answers[question.key] = click.prompt(
            question.key,
            type=click.Choice(question.values),
            default=question.default,
            show_choices=False,
        )
    return answers


@click.command()
@click.argument("target", default=".", type=click.Path(exists=True, path_type=Path))
def check(target: Path) -> None:
    """Inspect the service in TARGET before deploying it: schemas, batch and single forms,
    determinism, JSON, load() and artifacts. Exits 1 when it finds a problem."""
    try:
        report = check_project(target)
    except ShipwayError as err:
        fail(err)
    click.echo(report.render())
    sys.exit(0 if report.ok else 1)


@click.command()
@click.argument("target", default=".", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--no-tests", is_flag=True, help="Do not run the project's tests after the update.")
def update(target: Path, no_tests: bool) -> None:
    """Bring the newest template's changes into the project in TARGET, keeping your edits, then run
    its tests. Needs a clean git tree; exits 1 on conflicts or failing tests."""
    try:
        result = update_project(target, run_tests=not no_tests)
    except ShipwayError as err:
        fail(err)
    if not result.updated:
        click.echo(f"{result.path.name} is already at template version {result.after}; nothing to update.")
        return
    click.echo(
        f"updated {result.path.name} from template version {result.before} to {result.after}: "
        f"{len(result.changed)} file{'s' if len(result.changed) != 1 else ''} changed"
    )
    for name in result.changed:
        click.echo(f"  {'C' if name in result.conflicts else 'M'} {name}")
    if result.conflicts:
        click.echo(
            f"\nconflicts in {', '.join(result.conflicts)}: your lines and the template's are both there, between\n"
            f"'<<<<<<< before updating' and '>>>>>>> after updating'. Keep what you want, remove the markers,\n"
            f"run the tests (pytest), then commit. `git diff` shows the whole update; `{UNDO}` undoes it."
        )
        sys.exit(1)
    if result.tests is None:
        click.echo("\nreview it with `git diff`, run the tests, then commit.")
        return
    summary = (result.tests.stdout.strip().splitlines() or ["(no output)"])[-1]
    if result.tests.returncode != 0:
        click.echo(result.tests.stdout + result.tests.stderr, err=True)
        click.echo(f"\nthe project's tests fail after the update: {summary}")
        click.echo(f"fix them, or undo the update with `{UNDO}`.")
        sys.exit(1)
    click.echo(f"\nthe project's tests pass: {summary}. Review with `git diff`, then commit.")
