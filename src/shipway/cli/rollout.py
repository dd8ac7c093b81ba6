"""`shipway rollout`: take a candidate model version through the plan of shipway.toml
(docs/deploy.md#rollouts): start, status, compare, promote, abort, and run the controller."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click
import orjson

from shipway.cli.common import echo_json, fail, table
from shipway.cli.monitor import project_settings
from shipway.common.times import iso
from shipway.core.settings import Settings
from shipway.errors import ShipwayError

if TYPE_CHECKING:
    from shipway.deploy.rollout import Decision, Rollout
    from shipway.store.provider import StoreProvider
    from shipway.store.version_comparison import Comparison

__all__ = ["render_comparison", "rollout", "rollout_jobs"]

_TARGET = "The project folder (default: here)."
_STORE = "The store to use, e.g. postgresql://... Default: store.url."


@contextmanager
def project_rollout(target: str, store_url: str | None = None, actor: str | None = None) -> Iterator[Rollout]:
    """The rollouts of the project in TARGET over its store (opened, closed after)."""
    from shipway.deploy.plan import load_plan
    from shipway.deploy.rollout import Rollout
    from shipway.store import open_store
    from shipway.store.outcomes import reader_of

    settings = project_settings(target, {"store.url": store_url})
    plan = load_plan(settings)
    store = open_store(settings["store.url"], settings.root)
    try:
        yield Rollout(
            store,
            settings["name"],
            plan,
            reader=reader_of(settings),
            suite_report=settings.path("monitoring.validation_report"),
            actor=actor,
        )
    finally:
        store.close()


def rollout_jobs(settings: Settings, stores: StoreProvider | None = None) -> list[tuple[float, Callable[[], object]]]:
    """What `shipway serve` runs in each worker: the rollout controller's check, [] with
    `rollout.in_serve = false`. The serving layer gets a plain callable; `stores` is the
    process's store provider (the project's), shared with everything else in the worker."""
    if not settings["rollout.in_serve"]:
        return []
    from shipway.deploy.plan import load_plan
    from shipway.deploy.rollout import Rollout, controller_actor
    from shipway.errors import StoreUnavailable
    from shipway.store.outcomes import reader_of
    from shipway.store.provider import StoreProvider as Provider

    plan = load_plan(settings)  # a bad plan stops `shipway serve` before it starts
    provider = stores if stores is not None else Provider(settings["store.url"], settings.root)
    lock = threading.Lock()
    held: list[Rollout] = []

    def check() -> None:
        with lock:
            store = provider.get()  # a handle reopened after an outage is picked up here
            if not held:
                held.append(
                    Rollout(
                        store,
                        settings["name"],
                        plan,
                        reader=reader_of(settings),
                        suite_report=settings.path("monitoring.validation_report"),
                        actor=controller_actor(),
                    )
                )
            held[0].store = store
            try:
                held[0].tick()
            except StoreUnavailable as err:
                provider.failed(err)  # logged once; the next check reconnects
                raise

    return [(plan.check_every_s, check)]


def _decided(decision: Decision, as_json: bool) -> None:
    if as_json:
        echo_json(decision.to_dict())
        return
    state = decision.state
    click.echo(f"{decision.action}: {state.version} is {state.mode} (share {state.share:g}); {decision.reason}")
    for delivery in decision.deliveries:
        click.echo(f"  told {delivery.url}: {'ok' if delivery.ok else delivery.error}")


@click.group()
def rollout() -> None:
    """Roll a candidate model version out by the plan in shipway.toml: shadow, canary, promote."""


@rollout.command()
@click.argument("version")
@click.option("--target", default=".", help=_TARGET)
@click.option("--store", "store_url", help=_STORE)
@click.option("--key", default=None, help="The request field that keeps a caller on one side of a canary.")
@click.option("--actor", default=None, help="Who starts it, for the history (default: $SHIPWAY_ACTOR or login).")
@click.option(
    "--parity/--no-parity",
    default=True,
    show_default=True,
    help="Refuse the version unless it answers its held-out examples as its training run recorded.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
def start(
    version: str, target: str, store_url: str | None, key: str | None, actor: str | None, parity: bool, as_json: bool
) -> None:
    """Start rolling VERSION (a registered version, prefix or alias) out at the plan's first step,
    after the parity gate (docs/deploy.md#the-parity-gate)."""
    try:
        with project_rollout(target, store_url, actor) as controller:
            gate = _parity_gate(target, controller) if parity else None
            decision = controller.start(version, key=key, parity=gate)
    except ShipwayError as err:
        fail(err, code=1)
    _decided(decision, as_json)


def _parity_gate(target: str, controller: Rollout) -> Callable[[str], None]:
    """The parity gate of deploy/parity.py on a registered version, laid out under deploy.root."""
    from shipway.core.held_out import read_held_out
    from shipway.deploy.parity import candidate_pipeline, parity_gate
    from shipway.registry import checkout

    settings = project_settings(target)

    def gate(version: str) -> None:
        folder = checkout(controller.store, settings, version)
        if read_held_out(folder) is None:
            click.echo(
                f"parity gate: skipped, {version}'s run recorded no held-out answers (train with `shipway train`)"
            )
            return
        report = parity_gate(candidate_pipeline(target, folder), folder, settings["deploy.parity_tolerance"])
        click.echo(f"parity gate: {report.summary()}")

    return gate


def _ending(fn: Callable[..., None]) -> Callable[..., None]:
    """The options of the commands that end a rollout now (promote, abort)."""
    for option in reversed(
        [
            click.option("--target", default=".", help=_TARGET),
            click.option("--store", "store_url", help=_STORE),
            click.option("--reason", default="", help="Why, for the history and the message."),
            click.option("--actor", default=None, help="Who, for the history (default: $SHIPWAY_ACTOR or login)."),
            click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON."),
        ]
    ):
        fn = option(fn)
    return fn


def _end(how: str, target: str, store_url: str | None, reason: str, actor: str | None, as_json: bool) -> None:
    try:
        with project_rollout(target, store_url, actor) as controller:
            decision = controller.promote(reason) if how == "promote" else controller.abort(reason)
    except ShipwayError as err:
        fail(err, code=1)
    _decided(decision, as_json)


@rollout.command()
@_ending
def promote(target: str, store_url: str | None, reason: str, actor: str | None, as_json: bool) -> None:
    """Promote the running candidate now: it becomes the live version."""
    _end("promote", target, store_url, reason, actor, as_json)


@rollout.command()
@_ending
def abort(target: str, store_url: str | None, reason: str, actor: str | None, as_json: bool) -> None:
    """Stop the running candidate now (no more traffic); it can be started again."""
    _end("abort", target, store_url, reason, actor, as_json)


@rollout.command()
@click.option("--target", default=".", help=_TARGET)
@click.option("--store", "store_url", help=_STORE)
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(target: str, store_url: str | None, as_json: bool) -> None:
    """The running rollout: its step, the guards' verdict, the comparison, and the history."""
    try:
        with project_rollout(target, store_url) as controller:
            found = controller.status()
    except ShipwayError as err:
        fail(err, code=1)
    if as_json:
        echo_json(found.to_dict())
        return
    state = found.state
    if state is None:
        click.echo(f"{found.service}: no rollout yet; start one with `shipway rollout start VERSION`.")
        return
    where = "" if found.step is None else f", step {found.step + 1}/{len(found.plan.steps)}"
    click.echo(f"{found.service}: candidate {state.version} is {state.mode} (share {state.share:g}){where}")
    click.echo(f"  since {iso(state.changed_at)}: {state.reason}")
    if found.step_ends is not None:
        click.echo(f"  the step ends at {iso(found.step_ends)} at the earliest")
    if found.verdict is not None:
        for breach in found.verdict.breaches:
            click.echo(f"  BREACHED: {breach.message}")
        for waiting in found.verdict.waiting:
            click.echo(f"  waiting: {waiting}")
    if found.comparison is not None:
        click.echo()
        for line in render_comparison(found.comparison):
            click.echo(line)
    click.echo()
    click.echo("history, newest first:")
    rows = [
        [s.generation, iso(s.changed_at), s.version, s.mode, f"{s.share:g}", s.actor, s.reason] for s in found.history
    ]
    for line in table(["gen", "when", "version", "mode", "share", "by", "reason"], rows, {0}):
        click.echo(line)


@rollout.command()
@click.option("--target", default=".", help=_TARGET)
@click.option("--store", "store_url", help=_STORE)
@click.option("--since", default="1h", show_default=True, help="How far back: 30m, 24h, 7d.")
@click.option("--candidate", default=None, help="The candidate version (default: the service's candidate).")
@click.option("--live", default=None, help="The live version (default: the other version that answered most).")
@click.option(
    "--examples", default=3, show_default=True, type=click.IntRange(0, 100), help="Examples per disagreement."
)
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare(
    target: str,
    store_url: str | None,
    since: str,
    candidate: str | None,
    live: str | None,
    examples: int,
    as_json: bool,
) -> None:
    """The candidate against the live version from the prediction log: agreement, per-class
    disagreements with examples, latency, error rate and online accuracy of each."""
    from shipway.common.times import parse_duration
    from shipway.registry import current_candidate, resolve
    from shipway.store.version_comparison import compare_versions

    try:
        seconds = parse_duration(since, "--since")
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--since") from None
    try:
        with project_rollout(target, store_url) as controller:
            store, service = controller.store, controller.service
            if candidate is None:
                state = current_candidate(store, service)
                if state is None:
                    raise click.UsageError(f"{service!r} has had no candidate; name one with --candidate VERSION")
                candidate = state.version
            else:
                candidate = resolve(store, candidate).version
            now = time.time()
            found = compare_versions(
                store,
                service,
                candidate,
                since=now - seconds,
                until=now + 1,
                live=live,
                reader=controller.reader,
                examples=examples,
            )
    except ShipwayError as err:
        fail(err, code=1)
    if as_json:
        echo_json(found.to_dict())
    else:
        for line in render_comparison(found):
            click.echo(line)


@rollout.command()
@click.option("--target", default=".", help=_TARGET)
@click.option("--store", "store_url", help=_STORE)
@click.option("--once", is_flag=True, help="Check once and exit.")
def run(target: str, store_url: str | None, once: bool) -> None:
    """Run the rollout controller: every rollout.check_every_s, roll back on a breached guard or
    move to the next step. Any number may run beside `shipway serve`: one of them makes each change."""
    from shipway.deploy.rollout import controller_actor

    try:
        with project_rollout(target, store_url, controller_actor()) as controller:
            while True:
                decision = controller.tick()
                if decision is not None:
                    _decided(decision, False)
                if once:
                    return
                time.sleep(controller.plan.check_every_s)
    except ShipwayError as err:
        fail(err, code=1)
    except KeyboardInterrupt:
        return


def render_comparison(found: Comparison) -> list[str]:
    """The comparison as text lines: the two versions' figures, then the disagreements."""

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    lines = [
        f"{found.service}: {found.candidate.version} against {found.live.version or '(no live version)'}, "
        f"{iso(found.since)} to {iso(found.until)}"
    ]
    rows = [
        [
            role,
            f.version,
            f.requests,
            f.errors,
            pct(f.error_rate),
            ms(f.latency_p50_ms),
            ms(f.latency_p99_ms),
            f.labelled,
            pct(f.accuracy),
        ]
        for role, f in (("live", found.live), ("candidate", found.candidate))
    ]
    lines += table(
        ["", "version", "requests", "errors", "error rate", "p50 ms", "p99 ms", "labelled", "accuracy"],
        rows,
        {2, 3, 4, 5, 6, 7, 8},
    )
    lines.append(f"agreement: {pct(found.agreement)} of {found.paired} requests both answered")
    if found.disagreements:
        lines.append("disagreements (live -> candidate), most frequent first:")
        for d in found.disagreements[:20]:
            lines.append(f"  {d.live} -> {d.candidate}: {d.count}")
            for example in d.examples:
                text = orjson.dumps(example["inputs"]).decode()
                lines.append(f"    {example['request_id']}: {text[:160]}")
    return lines
