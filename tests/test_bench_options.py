"""The benches' command lines: the documented invocations parse as their docs say."""

import pytest

from bench import peers


def parse(monkeypatch: pytest.MonkeyPatch, *argv: str):
    monkeypatch.setattr("sys.argv", ["bench/peers.py", *argv])
    return peers.parse_args()


def test_peers_full_run_needs_no_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    """``uv run python bench/peers.py``, the full run of the docs, runs every peer and workload; the
    system runworker-base, which needs a checkout to compare with, is not in it."""
    args = parse(monkeypatch)
    assert args.only == ["runworker", "saq", "huey", "dramatiq"]
    assert args.workloads == list(peers.WORKLOADS)


def test_peers_baseline_adds_its_system(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").touch()
    (tmp_path / "manage.py").touch()
    args = parse(monkeypatch, "--baseline", str(tmp_path))
    assert args.only[-1] == "runworker-base"


def test_peers_baseline_system_without_a_checkout_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse(monkeypatch, "--only", "runworker,runworker-base")
    assert exit_.value.code == 2
    assert "--only runworker-base needs --baseline PATH" in capsys.readouterr().err
