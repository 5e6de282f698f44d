"""The chaos control file (standins/chaos.py): the plan it describes, its re-reading, the seeded draws and the
injection log the soak counts."""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from standins.chaos import INJECTED_LOG_NAME, POINT_KINDS, Chaos, ChaosPlanError, count_injected, load_plan
from standins.stack import STANDINS, Launch
from tests import ROOT
from tests.support.chaos import write_plan

EXAMPLE = {
    "seed": 7, "retry_after_seconds": 2, "timeout_seconds": 4, "late_minutes": 90,
    "faults": {
        "monitor.query": {"500": 0.02, "429": 0.02, "partial": 0.02, "timeout": 0.01},
        "monitor.ingestion": {"500": 0.02, "429": 0.02, "413": 0.01, "drop_after_accept": 0.02},
        "acs.send": {"500": 0.05},
        "arm": {"500": 0.02, "429": 0.02},
        "smtp": {"refuse": 0.05, "drop_after_data": 0.05},
        "gateway.metrics": {"late": 0.03},
    },
}  # fmt: skip


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_example_control_file_reads_as_written(tmp_path: Path) -> None:
    plan = load_plan(write_plan(tmp_path / "chaos.json", EXAMPLE))
    assert (plan.seed, plan.retry_after_seconds, plan.timeout_seconds, plan.late_minutes) == (7, 2, 4.0, 90.0)
    assert plan.rate("monitor.query", "partial") == 0.02
    assert plan.rate("smtp", "drop_after_data") == 0.05
    # A kind or point not named is 0.
    assert plan.rate("monitor.query", "503") == 0.0
    assert load_plan(write_plan(tmp_path / "empty.json", {})).rate("arm", "500") == 0.0


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ('{"seed": 7,', "line 1"),
        ({"faults": {"monitor.querry": {"500": 0.1}}}, "field 'faults.monitor.querry'"),
        ({"faults": {"smtp": {"500": 0.1}}}, "field 'faults.smtp.500'"),
        ({"faults": {"arm": {"500": 1.5}}}, "field 'faults.arm.500'"),
        ({"faults": {"arm": {"500": "0.1"}}}, "field 'faults.arm.500'"),
        ({"faults": {"arm": {"500": 0.6, "429": 0.6}}}, "field 'faults.arm': the rates add up to 1.2"),
        ({"retry_after_seconds": 1.5}, "field 'retry_after_seconds'"),
        ({"timeout_seconds": -1}, "field 'timeout_seconds'"),
        ({"seeed": 7}, "field 'seeed'"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_a_bad_control_file_is_an_error_naming_the_file_and_the_field(
    tmp_path: Path, content: dict[str, Any] | str, named: str
) -> None:
    path = write_plan(tmp_path / "chaos.json", content if not isinstance(content, list) else json.dumps(content))
    with pytest.raises(ChaosPlanError) as caught:
        load_plan(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert named in str(caught.value)


def test_no_control_file_no_faults(tmp_path: Path) -> None:
    chaos = Chaos(tmp_path / "absent.json")
    assert [chaos.inject(point) for point in POINT_KINDS for _ in range(50)] == [None] * 50 * len(POINT_KINDS)
    assert not (tmp_path / INJECTED_LOG_NAME).exists()


def test_the_file_is_read_again_when_it_changes_at_most_once_a_second(tmp_path: Path) -> None:
    control = write_plan(tmp_path / "chaos.json", {"faults": {"arm": {"500": 1.0}}})
    clock = FakeMonotonic()
    chaos = Chaos(control, monotonic=clock)
    assert chaos.draw("arm") == "500"
    write_plan(control, {"faults": {"arm": {"429": 1.0}}})
    clock.now += 0.5
    assert chaos.draw("arm") == "500", "looked at no more than once a second"
    clock.now += 0.6
    assert chaos.draw("arm") == "429"
    control.unlink()  # the driver turns chaos off by removing the file
    clock.now += 1.1
    assert chaos.draw("arm") is None


def test_a_malformed_file_keeps_the_previous_plan_and_logs_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    control = write_plan(tmp_path / "chaos.json", {"faults": {"acs.send": {"503": 1.0}}})
    clock = FakeMonotonic()
    chaos = Chaos(control, monotonic=clock)
    assert chaos.draw("acs.send") == "503"
    write_plan(control, {"faults": {"acs.send": {"503": 2}}})
    clock.now += 1.1
    with caplog.at_level(logging.ERROR, logger="standins.chaos"):
        assert chaos.draw("acs.send") == "503"
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert str(control) in record.getMessage() and "faults.acs.send.503" in record.getMessage()
    assert "keeping the previous plan" in record.getMessage()
    caplog.clear()
    clock.now += 1.1
    with caplog.at_level(logging.ERROR, logger="standins.chaos"):
        chaos.draw("acs.send")
    assert not caplog.records, "an unchanged bad file is reported once, not at every look"


def test_draws_are_seeded_per_point_and_repeat_for_the_same_requests(tmp_path: Path) -> None:
    plan = {"seed": 11, "faults": {"smtp": {"refuse": 0.3, "drop_after_data": 0.2}, "arm": {"500": 0.5}}}
    control = write_plan(tmp_path / "chaos.json", plan)
    first, second = Chaos(control), Chaos(control)
    # Interleaving other points does not move a point's sequence.
    runs = [[first.draw("smtp") for _ in range(200)], []]
    for _ in range(200):
        second.draw("arm")
        runs[1].append(second.draw("smtp"))
    assert runs[0] == runs[1]
    # The contract the driver relies on: random.Random(f"{seed}:{point}"), kinds in their listed order.
    expected_draws = random.Random("11:smtp")
    expected = []
    for _ in range(200):
        value = expected_draws.random()
        expected.append("refuse" if value < 0.3 else "drop_after_data" if value < 0.5 else None)
    assert runs[0] == expected
    assert 40 <= runs[0].count("refuse") <= 80 and 20 <= runs[0].count("drop_after_data") <= 60
    other = Chaos(write_plan(tmp_path / "other.json", {**plan, "seed": 12}))
    assert [other.draw("smtp") for _ in range(200)] != runs[0]


def test_each_fault_is_one_line_of_the_injection_log_and_counted(tmp_path: Path) -> None:
    control = write_plan(tmp_path / "chaos.json", {"seed": 3, "faults": {"arm": {"500": 0.5, "429": 0.5}}})
    chaos = Chaos(control)
    kinds = [chaos.inject("arm", f"request {n}") for n in range(20)]
    lines = [json.loads(line) for line in (tmp_path / INJECTED_LOG_NAME).read_text().splitlines()]
    assert [line["kind"] for line in lines] == kinds
    assert {line["point"] for line in lines} == {"arm"}
    assert lines[0]["detail"] == "request 0" and lines[0]["at"].endswith("+00:00")
    expected = {("arm", kind): kinds.count(kind) for kind in {"500", "429"} if kind in kinds}
    # The log itself, the control file or its directory.
    for path in (tmp_path / INJECTED_LOG_NAME, control, tmp_path):
        assert count_injected(path) == expected
    assert count_injected(tmp_path / "elsewhere" / "chaos.json") == {}, "no log yet: nothing injected"


def test_processes_share_the_injection_log(tmp_path: Path) -> None:
    control = write_plan(tmp_path / "chaos.json", {"faults": {"acs.send": {"500": 1.0}}})
    script = (
        "import sys; from pathlib import Path; from standins.chaos import Chaos\n"
        "chaos = Chaos(Path(sys.argv[1]))\n"
        "for n in range(300): chaos.inject('acs.send', 'x' * 200)\n"
    )
    writers = [subprocess.Popen([sys.executable, "-c", script, str(control)], cwd=ROOT) for _ in range(3)]
    assert [writer.wait(timeout=60) for writer in writers] == [0, 0, 0]
    assert count_injected(control) == {("acs.send", "500"): 900}, "no line lost or torn"


def test_a_torn_or_foreign_line_is_an_error_naming_the_line(tmp_path: Path) -> None:
    (tmp_path / INJECTED_LOG_NAME).write_text('{"point": "arm", "kind": "500"}\n{"point": \n')
    with pytest.raises(ValueError, match=f"{INJECTED_LOG_NAME}: line 2"):
        count_injected(tmp_path)


def test_the_stack_hands_the_control_file_to_the_stand_ins_that_inject(tmp_path: Path) -> None:
    control = tmp_path / "chaos.json"
    urls = {"simulator": "http://127.0.0.1:1", "monitor": "https://127.0.0.1:2"}
    with_chaos = Launch.create(tmp_path, fixed_ports=True, chaos_file=control)
    without = Launch.create(tmp_path, fixed_ports=True)
    given = {spec.name for spec in STANDINS if "--chaos" in spec.arguments(with_chaos, urls)}
    assert given == {"monitor", "gateway", "mail", "acs-email", "arm"}
    for spec in STANDINS:
        argv = spec.arguments(with_chaos, urls)
        if "--chaos" in argv:
            assert argv[argv.index("--chaos") + 1] == str(control)
        assert "--chaos" not in spec.arguments(without, urls), "no chaos argument: no change"
