"""The install a newcomer sees: package metadata that builds without deprecation warnings."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_license_is_an_spdx_string_with_its_file_and_a_setuptools_that_reads_it() -> None:
    """A license table (``{ text = "MIT" }``) makes setuptools >= 77 print a page of
    deprecation warnings on every install; an SPDX string and ``license-files`` do not,
    and need setuptools >= 77 to be understood."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project = meta["project"]
    assert project["license"] == "MIT"
    for pattern in project["license-files"]:
        assert list(ROOT.glob(pattern)), f"license file {pattern} is missing"
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    (req,) = [r for r in meta["build-system"]["requires"] if r.startswith("setuptools")]
    m = re.fullmatch(r"setuptools>=(\d+)(\.\d+)*", req)
    assert m and int(m.group(1)) >= 77, req
