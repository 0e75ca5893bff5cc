"""The docs build as Read the Docs builds them, with the README's own command.

A venv gets exactly what ``.readthedocs.yaml`` installs (read from it, not copied here), in a copy
of the source tree with no service in the environment, and runs the ``sphinx-build`` command the
README gives, ``-W`` included: so the docs need nothing that the ``docs`` extra does not bring.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT, make_venv, run_logged, source_files
from .follow import reader_environment

pytestmark = pytest.mark.newcomer

#: The variables of the services, which Read the Docs does not have.
SERVICES = ("REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")


def read_the_docs_install(config: dict) -> list[str]:
    """Return the ``pip install`` arguments of ``python.install`` in a Read the Docs config."""
    arguments = []
    for entry in config["python"]["install"]:
        if "requirements" in entry:
            arguments += ["-r", entry["requirements"]]
        elif entry.get("method", "pip") == "pip":
            extras = ",".join(entry.get("extra_requirements", []))
            arguments.append(f"{entry['path']}[{extras}]" if extras else entry["path"])
        else:
            pytest.fail(f".readthedocs.yaml: install entry {entry} is not one this test knows")
    return arguments


def readme_sphinx_command() -> str:
    """Return the ``sphinx-build`` command the README tells readers to run."""
    found = re.findall(r"sphinx-build [^`\n]+", (ROOT / "README.md").read_text())
    assert len(found) == 1, f"the README should give one sphinx-build command, not {found}"
    return found[0]


def source_copy(destination: Path) -> Path:
    """Copy the source files (see :func:`source_files`) to ``destination``; return it."""
    for name in source_files():
        (destination / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, destination / name)
    return destination


def test_the_docs_build_from_read_the_docs_install_list(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / ".readthedocs.yaml").read_text())
    assert config["sphinx"]["configuration"] == "docs/conf.py"
    assert config["sphinx"].get("fail_on_warning") is True
    source = source_copy(tmp_path / "source")
    install = read_the_docs_install(config)
    venv = make_venv(tmp_path / "venv", tmp_path / "venv.log", *install, cwd=source)
    env = reader_environment(venv, venv / "bin", {})
    for name in SERVICES:
        env.pop(name, None)
    command = readme_sphinx_command()
    run_logged(["bash", "-c", command], tmp_path / "sphinx.log", cwd=source, env=env)
    assert (source / "docs" / "_build" / "html" / "index.html").is_file()
