"""`vigil data import sessions --min-confidence` is range-checked: NaN or a value outside [0, 1] is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from vigil.cli import app
from vigil.data.importers.sessions import read_sessions
from vigil.errors import VigilError


@pytest.mark.parametrize("value", ["nan", "-0.1", "1.5", "inf", "-inf"])
def test_min_confidence_outside_zero_one_is_refused_naming_it(tmp_path: Path, value: str) -> None:
    (tmp_path / "src").mkdir()
    with pytest.raises(VigilError) as err:
        read_sessions(tmp_path / "src", "ball", float(value))
    assert err.value.field == "--min-confidence"
    result = CliRunner().invoke(
        app,
        [
            "data",
            "import",
            "sessions",
            str(tmp_path / "src"),
            "--out",
            str(tmp_path / "out"),
            "--min-confidence",
            value,
        ],
    )
    assert result.exit_code == 2 and "[--min-confidence]" in result.stderr, result.output
    assert not (tmp_path / "out").exists()
