"""Sphinx configuration of the django-broadcaster documentation."""

import os
import sys
from pathlib import Path

import django

# The repository root, so that autodoc imports this checkout's package and the test settings.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

import django_broadcaster  # noqa: E402  (needs django.setup() first)

project = "django-broadcaster"
author = "django-broadcaster developers"
copyright = "django-broadcaster developers"
release = django_broadcaster.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}

html_theme = "furo"
html_title = f"django-broadcaster {release}"
