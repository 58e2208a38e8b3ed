"""tests/extras.py: a missing optional package fails the test (skips only when asked), and
a package that is installed but broken is never skipped."""

from __future__ import annotations

import sys

import pytest

from tests.extras import ALLOW, need, need_path


def test_missing_package_fails_unless_skipping_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW, raising=False)
    with pytest.raises(pytest.fail.Exception, match="pip install petl\\[nothing\\]"):
        need("petl_no_such_package", "petl[nothing]")
    monkeypatch.setenv(ALLOW, "1")
    with pytest.raises(pytest.skip.Exception, match="petl_no_such_package is not installed"):
        need("petl_no_such_package", "petl[nothing]")


def test_installed_but_broken_package_is_an_error(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "petl_broken_pkg.py").write_text("import petl_its_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(ALLOW, "1")  # even when skipping missing packages is allowed
    with pytest.raises(ModuleNotFoundError, match="petl_its_missing_dependency"):
        need("petl_broken_pkg", "petl[broken]")
    sys.modules.pop("petl_broken_pkg", None)


def test_missing_data_folder(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW, raising=False)
    assert need_path(str(tmp_path), "tmp") == str(tmp_path)
    with pytest.raises(pytest.fail.Exception, match="the data not found at"):
        need_path(str(tmp_path / "absent"), "the data")
