"""What an operator configures: the documented variables, .env files, contradictory timings."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from django.core import checks
from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parent.parent


def names_read_by_settings() -> set[str]:
    source = (ROOT / "pickup" / "settings.py").read_text()
    return set(re.findall(r'env_(?:str|bool|int|list)\(\s*"([A-Z0-9_]+)"', source))


def names_in_readme_table() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z0-9_]+)` \|", section, flags=re.MULTILINE))


def names_in_env_example() -> set[str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return {match.group(1) for line in lines if (match := re.match(r"^(?:# )?([A-Z][A-Z0-9_]*)=", line))}


def test_readme_table_and_env_example_list_exactly_what_the_settings_read():
    read = names_read_by_settings()
    assert "DATABASE_URL" in read  # the pattern finds the settings at all
    assert names_in_readme_table() == read
    assert names_in_env_example() == read


def test_internal_timings_are_not_environment_settings():
    assert not {name for name in names_read_by_settings() if "TIMER" in name or "GRACE" in name or "LEASE" in name}


def test_env_example_used_as_is_runs_manage_py(tmp_path):
    environment = {key: value for key, value in dotenv_values(ROOT / ".env.example").items() if value is not None}
    environment.update(PATH=os.environ["PATH"], DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--fail-level", "WARNING"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_dot_env_file_is_read_and_the_environment_wins(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    # settings.py finds .env beside its own package: copy that, link the rest.
    shutil.copytree(ROOT / "pickup", project / "pickup", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("manage.py", "orders", "notifications", "templates", "locale", "static"):
        (project / name).symlink_to(ROOT / name)
    (project / ".env").write_text("DEBUG=true\nTIME_ZONE=Europe/Paris\nLOG_LEVEL=ERROR\n")
    show = "from django.conf import settings; print(settings.TIME_ZONE, settings.DEBUG, settings.LOGGING['root']['level'])"
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {show}"],
        cwd=project, capture_output=True, text=True, timeout=120,
        env={"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "pickup.settings", "LOG_LEVEL": "WARNING",
             "PYTHONPATH": str(project)},
    )
    assert result.stdout.split() == ["Europe/Paris", "True", "WARNING"], result.stderr


def test_a_timer_lookahead_as_long_as_the_claim_lease_is_refused(settings):
    settings.PICKUP_CLAIM_LEASE_SECONDS = 1
    settings.PICKUP_TIMER_LOOKAHEAD_MS = 1000
    assert "pickup.E001" in {message.id for message in checks.run_checks()}


def test_production_timings_pass_the_checks():
    ids = {message.id for message in checks.run_checks(include_deployment_checks=False)}
    assert not ids & {"pickup.E001", "pickup.W003"}
