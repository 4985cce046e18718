"""Log formats: journald fields under systemd, key=value elsewhere."""

from __future__ import annotations

from typing import Any

import pytest
import structlog

from lvsha import logs


class FakeJournal:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, str]]] = []

    def send(self, message: str, **fields: str) -> None:
        self.sent.append((message, fields))


def test_journald_renderer_sends_lvsha_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    journal = FakeJournal()
    monkeypatch.setattr(logs, "_journal", lambda: journal)
    assert logs.configure("journald") == "journald"
    logs.get("t").warning("transition", instance="VI_1", state="MASTER", priority=100)
    message, fields = journal.sent[0]
    assert message == "transition instance=VI_1 state=MASTER priority=100"
    assert fields == {
        "PRIORITY": "4",
        "SYSLOG_IDENTIFIER": "lvsha",
        "LVSHA_INSTANCE": "VI_1",
        "LVSHA_STATE": "MASTER",
        "LVSHA_PRIORITY": "100",
    }


def test_auto_picks_journald_only_under_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "_journal", lambda: FakeJournal())
    monkeypatch.setenv("JOURNAL_STREAM", "8:1234")
    assert logs.choose_format("auto") == "journald"
    monkeypatch.delenv("JOURNAL_STREAM")
    assert logs.choose_format("auto") in ("console", "keyvalue")


def test_journald_without_systemd_python_falls_back_to_keyvalue(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(logs, "_journal", lambda: None)
    assert logs.configure("journald") == "keyvalue"
    logs.get("t").info("started", name="lvs1")
    err = capsys.readouterr().err
    assert "level='info' event='started' name='lvs1'" in err


@pytest.fixture(autouse=True)
def _reset_structlog() -> Any:
    yield
    structlog.reset_defaults()
