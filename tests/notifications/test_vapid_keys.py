"""The operator's Web Push keys: made by a command, checked before production, made once by `make run`."""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.core.management import CommandError, call_command
from dotenv import dotenv_values
from py_vapid import Vapid

from notifications import vapid
from tests.test_security import ROOT, deploy_check


def made_keys(*args: str) -> dict[str, str]:
    out = io.StringIO()
    call_command("vapid_keys", *args, stdout=out)
    return dotenv_values(stream=io.StringIO(out.getvalue()))


def test_the_command_prints_a_working_pair_in_the_form_dot_env_takes():
    keys = made_keys("--subject", "mailto:kitchen@pickup.example.com")
    assert set(keys) == {"VAPID_PRIVATE_KEY", "VAPID_PUBLIC_KEY", "VAPID_SUBJECT"}
    assert vapid.key_problems(keys["VAPID_PRIVATE_KEY"], keys["VAPID_PUBLIC_KEY"], keys["VAPID_SUBJECT"]) == []
    signer = Vapid.from_string(keys["VAPID_PRIVATE_KEY"])  # what pywebpush does with it
    public = signer.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    assert vapid.b64url_encode(public) == keys["VAPID_PUBLIC_KEY"]
    assert made_keys()["VAPID_PRIVATE_KEY"] != keys["VAPID_PRIVATE_KEY"]  # a new pair each time


def test_the_command_refuses_a_subject_push_services_would_refuse():
    with pytest.raises(CommandError):
        call_command("vapid_keys", "--subject", "kitchen@pickup.example.com", stdout=io.StringIO())


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"private": ""}, "not both set"),
        ({"private": "c2hvcnQ"}, "32 bytes"),
        ({"public": "BAAA"}, "65 bytes"),
        ({"public": "other"}, "does not belong"),
        ({"subject": "kitchen@pickup.example.com"}, "mailto: or https:"),
        ({"subject": "http://pickup.example.com"}, "mailto: or https:"),
    ],
)
def test_a_broken_setting_is_named(change, problem):
    pair, other = vapid.new_key_pair(), vapid.new_key_pair()
    values = {"private": pair.private_key, "public": pair.public_key, "subject": "https://pickup.example.com/contact"}
    values.update({key: other.public_key if value == "other" else value for key, value in change.items()})
    problems = vapid.key_problems(values["private"], values["public"], values["subject"])
    assert len(problems) == 1 and problem in problems[0]


def test_the_signer_signs_for_the_public_key_the_page_gets(settings):
    settings.VAPID_PRIVATE_KEY, settings.VAPID_PUBLIC_KEY = vapid.new_key_pair()
    headers = vapid.signer().sign({"aud": "https://push.example.net", "sub": vapid.subject()})
    assert f"k={vapid.public_key()}" in headers["Authorization"]
    assert Vapid.verify(headers["Authorization"])  # RFC 8292: the JWT's signature checks out with k


def test_production_without_web_push_keys_fails_the_deploy_check():
    result = deploy_check(DATABASE_URL="postgres://pickup@db.example.com/pickup", VAPID_PRIVATE_KEY="", VAPID_PUBLIC_KEY="")
    assert result.returncode != 0
    assert "pickup.W005" in result.stderr + result.stdout


def test_production_with_a_mismatched_pair_fails_the_deploy_check():
    result = deploy_check(DATABASE_URL="postgres://pickup@db.example.com/pickup", VAPID_PUBLIC_KEY=vapid.new_key_pair().public_key)
    assert result.returncode != 0
    assert "does not belong" in result.stderr + result.stdout


def test_the_ci_deploy_check_script_passes_with_the_keys_it_makes():
    result = subprocess.run(["bash", "scripts/deploy_check.sh"], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr + result.stdout


def _run_all():
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "scripts" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_run_makes_development_keys_once_and_reuses_them(tmp_path, monkeypatch):
    run_all = _run_all()
    for name in ("VAPID_PRIVATE_KEY", "VAPID_PUBLIC_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DEBUG", "true")
    keys_file = tmp_path / "var" / "vapid-development.env"
    run_all.use_development_vapid_keys(env_file=tmp_path / "no.env", keys_file=keys_file)
    first = (os.environ["VAPID_PRIVATE_KEY"], os.environ["VAPID_PUBLIC_KEY"])
    assert vapid.key_problems(*first, "mailto:pickup@localhost") == []
    assert keys_file.stat().st_mode & 0o077 == 0  # the private key is the operator's alone

    monkeypatch.delenv("VAPID_PRIVATE_KEY")
    monkeypatch.delenv("VAPID_PUBLIC_KEY")
    run_all.use_development_vapid_keys(env_file=tmp_path / "no.env", keys_file=keys_file)
    assert (os.environ["VAPID_PRIVATE_KEY"], os.environ["VAPID_PUBLIC_KEY"]) == first


def test_make_run_leaves_keys_from_dot_env_alone(tmp_path, monkeypatch):
    run_all = _run_all()
    for name in ("VAPID_PRIVATE_KEY", "VAPID_PUBLIC_KEY"):
        monkeypatch.delenv(name, raising=False)
    pair = vapid.new_key_pair()
    env_file = tmp_path / ".env"
    env_file.write_text(f"VAPID_PRIVATE_KEY={pair.private_key}\nVAPID_PUBLIC_KEY={pair.public_key}\n")
    keys_file = tmp_path / "var" / "vapid-development.env"
    run_all.use_development_vapid_keys(env_file=env_file, keys_file=keys_file)
    assert not keys_file.exists()
    assert "VAPID_PRIVATE_KEY" not in os.environ  # settings.py reads .env itself


def test_repository_ignores_the_development_keys():
    ignored = subprocess.run(["git", "check-ignore", "-q", "var/vapid-development.env"], cwd=ROOT)
    assert ignored.returncode == 0
    assert Path(ROOT / ".gitignore").read_text().count("/var/") == 1
