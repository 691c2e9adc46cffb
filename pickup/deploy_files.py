"""The example configuration files in deploy/, filled in for one machine.

`make run-cluster` and the tests on that topology start nginx, Redis, the
sentinels, daphne and run_queue from these very files, so the examples the
README points operators to are the ones that run. A file names what it
needs as ``{{NAME}}``; every name must be given.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
_NAME = re.compile(r"\{\{([A-Z_]+)\}\}")


def render(template: str, **values: object) -> str:
    """deploy/``template`` with each ``{{NAME}}`` replaced by ``values[NAME]``."""
    text = (DEPLOY / template).read_text()
    missing = set(_NAME.findall(text)) - values.keys()
    if missing:
        raise KeyError(f"deploy/{template} needs {sorted(missing)}")
    return _NAME.sub(lambda match: str(values[match.group(1)]), text)


def write(template: str, destination: Path, **values: object) -> Path:
    destination.write_text(render(template, **values))
    return destination


def exec_start(unit: str, instance: str, **values: object) -> list[str]:
    """The command a systemd unit's ``ExecStart=`` runs, for instance ``%i``.

    Continuation lines are joined; ``%i`` is the only specifier these units use.
    """
    text = render(unit, **values).replace("\\\n", " ")
    [line] = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart=").replace("%i", instance))
