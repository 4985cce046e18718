"""Log formats: journald fields under systemd, key=value elsewhere."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

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
def _restore_defaults() -> Any:
    yield
    logs.configure("keyvalue")


def test_keyvalue_line_is_structlogs_timestamp_level_event_then_fields_in_call_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("keyvalue")
    logs.get("t").warning("transition", instance="VI_1", priority=100, peers=["192.0.2.12"])
    line = capsys.readouterr().err
    assert re.fullmatch(
        r"timestamp='\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z' level='warning' event='transition'"
        r" instance='VI_1' priority=100 peers=\['192.0.2.12'\]\n",
        line,
    ), line


def test_json_line_has_every_field_and_reprs_what_json_cannot_carry(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("json")
    logs.get("t").error("cannot run", error=ValueError("bad"), code=78)
    record = json.loads(capsys.readouterr().err)
    assert record.pop("timestamp").endswith("Z")
    assert record == {
        "error": "ValueError('bad')",
        "code": 78,
        "event": "cannot run",
        "level": "error",
    }


def test_console_line_pads_level_and_event_and_sorts_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("console")
    logs.get("t").info("started", name="lvs1", count=2)
    _, rest = capsys.readouterr().err.rstrip("\n").split(" ", 1)
    assert rest == "[info     ] started                        count=2 name=lvs1"


def test_events_below_the_threshold_are_not_written(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("keyvalue", logs.WARNING)
    log = logs.get("t")
    log.info("quiet")
    log.warning("loud")
    err = capsys.readouterr().err
    assert "quiet" not in err and "event='loud'" in err


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (0.0, "1970-01-01T00:00:00.000000Z"),
        (1796224879.5, "2026-12-02T15:21:19.500000Z"),
        (59.9999996, "1970-01-01T00:01:00.000000Z"),  # rounds up across the second
    ],
)
def test_timestamp_is_utc_iso_with_microseconds(now: float, expected: str) -> None:
    assert logs.timestamp(now) == expected
