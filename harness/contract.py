"""Where the contract lives: every layer that needs openapi.yaml asks here, so nobody restates it."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

API_BASE_PATH = "/api/v1"


def spec_path() -> Path:
    """The repository's openapi.yaml (an editable install), else the copy shipped in the package."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "openapi.yaml", here / "openapi.yaml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("openapi.yaml not found beside the harness package")


@cache
def load_spec() -> dict[str, Any]:
    """The parsed spec. Callers must not mutate it."""
    with spec_path().open(encoding="utf-8") as fh:
        spec: dict[str, Any] = yaml.safe_load(fh)
    return spec
