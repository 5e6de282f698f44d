"""The chaos soak (issue 14): a simulated week of the real local stack under seeded faults, then the figures.

    make soak                                   # 7 days, seed 1
    make soak SOAK_ARGS="--days 2 --seed 5"     # shorter, another seed

Every process of the stack (stand-ins, the Functions host) reads one stepped wall clock (bench/soak/clock.py):
the driver moves it forward to the next timer occurrence or fault whenever the stack is idle, so a week passes in
minutes while each run still takes its real time. Faults, drawn from the seed:
  - inside the stand-ins (standins/chaos.py, one control file): query 5xx / 429 + Retry-After / partial results /
    timeouts; ingestion 5xx / 429 / 413 / connection dropped after the rows were accepted; ARM 5xx / 429; ACS 5xx;
    SMTP refusing and dropping the connection after DATA; a share of the gateway's metric rows landing late;
  - by the driver: the Functions host SIGKILLed at a random moment of a costs run, then restarted; a second host
    running the costs timer at the same moment (a scaled-out Flex Consumption app); Azurite stopped for a while;
    the clock jumping hours ahead (a long pause: timers past due); the email transport switched from SMTP to
    Communication Services half way.
After the week the faults stop and the stack runs on (--drain-hours) so late rows and retries settle; then the
checks in bench/soak/checks.py run and the figures are printed and written to <data dir>/soak-report.json.
Exit code 0 only when every check holds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.soak.checks import utc_day
from bench.soak.clock import SteppedClock
from standins.chaos import count_injected

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ("traffic", "costs")
# The schedules of the soak: traffic three times an hour, costs hourly five minutes past (they never start together
# unless the clock jumps over both), hourly windows.
SOAK_SETTINGS = {
    "TRAFFIC_SCHEDULE": "0 */20 * * * *",
    "COST_SCHEDULE": "0 5 * * * *",
    "COST_WINDOW_MINUTES": "60",
    "COST_RETRY_DELAY_SECONDS": "1",
    # 20 calls spread over budget - upload reserve - request timeout = 1 s: a run takes seconds, not the sample's 8.
    "TRAFFIC_TIME_BUDGET_SECONDS": "8",
    # Amounts the soak's traffic crosses often (fires, escalations, resolves to count); pipeline-health rules that
    # must stay quiet.
    "ALERT_RULES_FILE": "bench/soak/alerts.soak.json",
}
DEFAULT_FAULTS: dict[str, dict[str, float]] = {
    "monitor.query": {"500": 0.02, "429": 0.02, "partial": 0.02, "timeout": 0.01},
    "monitor.ingestion": {"500": 0.02, "429": 0.02, "413": 0.01, "drop_after_accept": 0.02},
    "arm": {"500": 0.02, "429": 0.02},
    "acs.send": {"500": 0.1},
    "smtp": {"refuse": 0.1, "drop_after_data": 0.1},
    "gateway.metrics": {"late": 0.03},
}
READY_TIMEOUT_SECONDS = 60.0
# After a clock step the frozen app's world gets this long (real) to do what fell due: the gateway's metrics flush
# runs every second (start_stack's metrics_flush_seconds).
WORLD_CATCH_UP_SECONDS = 3.0
STEP_TIMEOUT_SECONDS = 300.0


@dataclass
class Figures:
    simulated_days: float = 0.0
    real_seconds: float = 0.0
    runs: dict[str, dict[str, int]] = field(default_factory=dict)  # function -> status -> count
    past_due_runs: int = 0
    injected: dict[str, int] = field(default_factory=dict)  # fault kind -> count
    host_rss_mb: list[float] = field(default_factory=list)  # after each costs run, per host life: see segments
    rss_segments: list[list[float]] = field(default_factory=list)
    leftover_processes: list[str] = field(default_factory=list)
    money: dict[str, Any] = field(default_factory=dict)
    emails: dict[str, Any] = field(default_factory=dict)
    log_lines: dict[str, int] = field(default_factory=dict)


class Host:
    """One local Functions host process (standins.funchost), its admin API and its log file."""

    def __init__(self, name: str, settings_file: Path, port: int, log_file: Path, *, schedules: bool) -> None:
        self.name, self.settings_file, self.port, self.log_file = name, settings_file, port, log_file
        self.schedules = schedules
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "standins.funchost",
            "--app",
            "function_app:app",
            "--settings",
            str(self.settings_file),
            "--port",
            str(self.port),
        ] + ([] if self.schedules else ["--no-schedules"])
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                argv,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start; see {self.log_file}")
            with contextlib.suppress(OSError, ValueError):
                if self._get("/admin/host/status").get("state") == "Running":
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not come up in {READY_TIMEOUT_SECONDS:.0f}s; see {self.log_file}")

    def _get(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as response:
            result: dict[str, Any] = json.loads(response.read())
            return result

    def status(self, function: str) -> dict[str, Any] | None:
        try:
            return self._get(f"/admin/functions/{function}/status")
        except (OSError, ValueError):
            return None

    def trigger(self, function: str) -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/admin/functions/{function}",
            data=b'{"input": ""}',
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=10).close()

    def rss_mb(self) -> float | None:
        if self.process is None:
            return None
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def freeze(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass(order=True)
class Event:
    at: datetime
    kind: str = field(compare=False)  # azurite_down, azurite_up, pause, acs
    hours: float = field(default=0.0, compare=False)


def plan_events(rng: random.Random, start: datetime, days: float, outages: int, pauses: int) -> list[Event]:
    """Driver faults at seeded moments, none in the first six hours (the stack warms up) or after the week."""
    span = days * 24 - 6
    events: list[Event] = []
    for _ in range(outages):
        at = start + timedelta(hours=6 + rng.uniform(0, span))
        hours = rng.uniform(0.5, 2.5)
        events += [Event(at, "azurite_down", hours), Event(at + timedelta(hours=hours), "azurite_up")]
    for _ in range(pauses):
        events.append(Event(start + timedelta(hours=6 + rng.uniform(0, span)), "pause", rng.uniform(2, 6)))
    events.append(Event(start + timedelta(days=days / 2), "acs"))
    return sorted(events)


def write_chaos(path: Path, seed: int, faults: dict[str, dict[str, float]], late_minutes: int) -> None:
    body = {
        "seed": seed,
        "retry_after_seconds": 2,
        "timeout_seconds": 4,
        "late_minutes": late_minutes,
        "faults": faults,
    }
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(body, indent=1), encoding="utf-8")
    temporary.replace(path)


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.data_dir: Path = args.data_dir.resolve()
        self.figures = Figures()
        self.clock = SteppedClock(self.data_dir / "clock")
        self.chaos_file = self.data_dir / "chaos.json"
        self.rss_segment: list[float] = []
        self.costs_seconds: list[float] = []

    # -- the stack ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        from standins.stack import start_stack

        os.environ.update(self.clock.environment())  # every child of the stack inherits the clock
        start = utc_day(self.clock.now()) + timedelta(days=1)
        self.clock.advance_to(start - timedelta(minutes=1))
        self.start_at = start
        write_chaos(
            self.chaos_file, self.args.seed, {} if self.args.no_faults else DEFAULT_FAULTS, self.args.late_minutes
        )
        self.stack = start_stack(self.data_dir, metrics_flush_seconds=1.0, chaos_file=self.chaos_file)
        # TRAFFIC_SEED stays empty: each run draws (and logs) its own, so the week is not one run 504 times.
        self.settings_values = dict(self.stack.settings) | SOAK_SETTINGS
        self.settings_file = self.data_dir / "soak.settings.json"
        self.write_settings()
        from standins._server import free_port

        self.host = Host("host", self.settings_file, free_port(), self.data_dir / "host.log", schedules=True)
        self.second = Host("host-2", self.settings_file, free_port(), self.data_dir / "host-2.log", schedules=False)
        self.host.start()
        self.second.start()

    def write_settings(self) -> None:
        self.settings_file.write_text(json.dumps({"IsEncrypted": False, "Values": self.settings_values}, indent=1))

    def restart_host(self, host: Host) -> None:
        host.kill()
        self.end_rss_segment()
        host.start()

    def end_rss_segment(self) -> None:
        if self.rss_segment:
            self.figures.rss_segments.append(self.rss_segment)
        self.rss_segment = []

    def azurite(self, up: bool) -> None:
        from standins.processes import spawn, stop_child, wait_ready

        child = next(child for child in self.stack.children if child.name == "azurite")
        if not up:
            stop_child(child)
            return
        fresh = spawn(
            "azurite",
            [str(part) for part in child.process.args],  # type: ignore[union-attr]
            cwd=ROOT,
            echo=False,
            ready_prefix="Azurite Table service is successfully listening",
        )
        wait_ready(fresh)
        self.stack.children[self.stack.children.index(child)] = fresh

    # -- the loop ------------------------------------------------------------------------------------------------

    def next_runs(self) -> dict[str, datetime]:
        found = {}
        for name in FUNCTIONS:
            status = self.host.status(name)
            if status and status.get("next_run"):
                found[name] = datetime.fromisoformat(status["next_run"])
        return found

    def run(self) -> int:
        args = self.args
        real_start = time.monotonic()
        self.start()
        week_end = self.start_at + timedelta(days=args.days)
        end = week_end + timedelta(hours=args.drain_hours)
        # The last two days of a week or longer kill no host, so one host life spans some 50 costs runs: the memory
        # figure (RSS after each costs run of that life) then says whether a run leaves anything behind.
        self.kills_until = week_end - timedelta(days=2) if args.days >= 4 else week_end
        events = plan_events(self.rng, self.start_at, args.days, args.azurite_outages, args.clock_pauses)
        self.events_done: dict[str, int] = {}
        faults_on = not args.no_faults
        last_report = self.clock.now()
        try:
            while True:
                now = self.clock.now()
                if now >= end:
                    break
                draining = now >= week_end
                if draining and faults_on:
                    write_chaos(self.chaos_file, args.seed, {}, args.late_minutes)
                    faults_on = False
                while events and events[0].at <= now:
                    self.apply(events.pop(0))
                runs = self.next_runs()
                if len(runs) < len(FUNCTIONS):
                    raise RuntimeError(f"the host does not report its timers; see {self.host.log_file}")
                target = min([*runs.values(), *(event.at for event in events[:1]), end])
                self.clock.advance_to(target + timedelta(milliseconds=10))
                due = [name for name, at in runs.items() if at <= self.clock.now()]
                if due:
                    self.step(due, draining)
                if self.clock.now() - last_report >= timedelta(hours=12):
                    last_report = self.clock.now()
                    self.progress(real_start)
        finally:
            self.finish(real_start)
        return 0 if self.passed else 1

    def apply(self, event: Event) -> None:
        self.events_done[event.kind] = self.events_done.get(event.kind, 0) + 1
        if event.kind == "azurite_down":
            self.azurite(up=False)
        elif event.kind == "azurite_up":
            self.azurite(up=True)
        elif event.kind == "pause":
            # The app paused (its VM frozen) while the world goes on: hours pass at once for everyone, the gateway
            # exports what it held meanwhile, then the host thaws and both timers fire past due.
            self.host.freeze()
            self.clock.advance_to(self.clock.now() + timedelta(hours=event.hours))
            time.sleep(WORLD_CATCH_UP_SECONDS)
            self.host.thaw()
        elif event.kind == "acs":
            self.settings_values["ALERT_DELIVERY"] = "acs"
            self.write_settings()
            self.restart_host(self.host)
            self.second.stop()
            self.second.start()

    def step(self, due: list[str], draining: bool) -> None:
        """Wait until the runs that fell due are over, killing or doubling a costs run when drawn."""
        kill = (
            "costs" in due
            and "traffic" not in due
            and self.clock.now() < self.kills_until
            and self.rng.random() < self.args.kill_share
        )
        overlap = "costs" in due and not draining and self.rng.random() < self.args.overlap_share
        typical = statistics.median(self.costs_seconds) if self.costs_seconds else 3.0
        kill_after = self.rng.uniform(0.05, typical)
        costs_started: float | None = None
        deadline = time.monotonic() + STEP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            statuses = {name: self.host.status(name) for name in FUNCTIONS}
            if any(status is None for status in statuses.values()):
                time.sleep(0.1)
                continue
            costs = statuses["costs"]
            assert costs is not None
            if costs["running"] and costs_started is None:
                costs_started = time.monotonic()
                if overlap:
                    self.second.trigger("costs")
                    self.events_done["overlap"] = self.events_done.get("overlap", 0) + 1
            if kill and costs_started is not None and time.monotonic() - costs_started >= kill_after:
                if costs["running"]:
                    self.events_done["host_killed"] = self.events_done.get("host_killed", 0) + 1
                self.restart_host(self.host)
                kill = False
                continue
            idle = all(
                not status["running"]
                and status["next_run"]
                and datetime.fromisoformat(status["next_run"]) > self.clock.now()
                for status in statuses.values()
                if status is not None
            )
            if idle:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"runs {due} did not finish in {STEP_TIMEOUT_SECONDS:.0f}s; see {self.host.log_file}")
        if overlap:
            self.wait_second()
        for name, status in statuses.items():
            last = status and status.get("last_invocation")
            if not last or name not in due:
                continue
            counts = self.figures.runs.setdefault(name, {})
            counts[last["status"]] = counts.get(last["status"], 0) + 1
            self.figures.past_due_runs += int(bool(last["past_due"]))
            if name == "costs" and last.get("duration_ms") is not None and last["status"] == "Succeeded":
                self.costs_seconds = [*self.costs_seconds[-20:], last["duration_ms"] / 1000]
        if "costs" in due and (rss := self.host.rss_mb()) is not None:
            self.rss_segment.append(rss)
            self.figures.host_rss_mb.append(rss)

    def wait_second(self) -> None:
        deadline = time.monotonic() + STEP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            status = self.second.status("costs")
            if status is not None and not status["running"]:
                last = status.get("last_invocation") or {}
                counts = self.figures.runs.setdefault("costs (second host)", {})
                counts[last.get("status", "?")] = counts.get(last.get("status", "?"), 0) + 1
                return
            time.sleep(0.1)

    def progress(self, real_start: float) -> None:
        elapsed = (self.clock.now() - self.start_at).total_seconds() / 86400
        runs = ", ".join(f"{name} {sum(counts.values())}" for name, counts in self.figures.runs.items())
        rss = f"{self.figures.host_rss_mb[-1]:.0f} MB" if self.figures.host_rss_mb else "-"
        print(
            f"soak: day {elapsed:4.1f} ({self.clock.now():%a %H:%M}), real {time.monotonic() - real_start:5.0f}s, "
            f"runs: {runs}; driver faults {self.events_done}; host RSS {rss}",
            flush=True,
        )

    # -- the end -------------------------------------------------------------------------------------------------

    def finish(self, real_start: float) -> None:
        figures = self.figures
        figures.simulated_days = (self.clock.now() - self.start_at).total_seconds() / 86400
        self.end_rss_segment()
        self.passed = False
        try:
            for host in (getattr(self, "host", None), getattr(self, "second", None)):
                if host is not None:
                    host.stop()
            if hasattr(self, "stack"):
                self.check()
        finally:
            leftovers = self.stack.stop() if hasattr(self, "stack") else []
            figures.leftover_processes = leftovers + self.stray_processes()
            figures.real_seconds = time.monotonic() - real_start
            injected = {f"{point} {kind}": count for (point, kind), count in count_injected(self.chaos_file).items()}
            figures.injected = injected | {
                f"driver {kind}": count for kind, count in getattr(self, "events_done", {}).items()
            }
            figures.log_lines = self.log_signals()
            (self.data_dir / "soak-report.json").write_text(json.dumps(asdict(figures), indent=1, default=str))
            self.passed = self.passed and not figures.leftover_processes
            self.print_report()

    def check(self) -> None:
        """The checks run in a child process on the stack's clock (its certificates and tokens live in that time)."""
        settings_file = self.data_dir / "soak.settings.json"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.soak.checks",
                "--settings",
                str(settings_file),
                "--start",
                self.start_at.isoformat(),
                "--days",
                str(self.args.days),
                "--outbox",
                str(self.stack.info.outbox_dir),
                "--chaos-log",
                str(self.data_dir / "chaos-injected.jsonl"),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"the checks failed to run:\n{done.stderr[-4000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        self.figures.money, self.figures.emails = result["money"], result["emails"]
        self.passed = bool(result["money"]["ok"] and result["emails"]["ok"])

    def stray_processes(self) -> list[str]:
        """Any process still running with this soak's clock in its environment (every child of the stack has it)."""
        marker = f"SOAK_CLOCK_FILE={self.clock.offset_file}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            with contextlib.suppress(OSError):
                if marker in (entry / "environ").read_bytes():
                    command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")[:120].decode(errors="replace")
                    found.append(f"pid {entry.name}: {command}")
        return found

    def log_signals(self) -> dict[str, int]:
        """How often the app said what the faults should make it say (from the hosts' logs)."""
        signals = {
            "windows restated": r"\b[1-9]\d* windows? restated",
            "emails sent again (same Message-ID)": r"sent again|sending it again",
            "timers past due": r"timer is past due",
            "bypass comparisons pending": r"PENDING",
            "costs runs failed": r"Executed 'Functions\.costs' \(Failed",
            "traffic runs failed": r"Executed 'Functions\.traffic' \(Failed",
        }
        text = ""
        for name in ("host.log", "host-2.log"):
            path = self.data_dir / name
            if path.exists():
                text += path.read_text(encoding="utf-8", errors="replace")
        return {label: len(re.findall(pattern, text)) for label, pattern in signals.items()}

    def print_report(self) -> None:
        figures = self.figures
        print("\n=== soak figures " + "=" * 60, flush=True)
        print(
            f"seed {self.args.seed}: {figures.simulated_days:.2f} simulated days in {figures.real_seconds / 60:.1f} "
            f"real minutes",
            flush=True,
        )
        for name, counts in figures.runs.items():
            print(f"  runs {name}: {counts}")
        print(f"  past-due runs: {figures.past_due_runs}")
        print("  faults injected (all survived when the checks below hold):")
        for kind, count in sorted(figures.injected.items()):
            print(f"    {kind:<38} {count}")
        money, emails = figures.money, figures.emails
        if money:
            print(
                f"  money: {money['final_windows']} final windows, {money['groups']} window x deployment x user "
                f"groups, {money['exact_tokens']:,} exact tokens ({money['cache_unmetered_tokens']:,} cached ones the "
                f"metrics cannot see, priced as input), {Decimal(money['cost_micros']).scaleb(-6)} USD; "
                f"skipped {len(money['skipped'])}, double counted {len(money['double_counted'])}, "
                f"short {len(money['short'])}, cost mismatches {len(money['cost_mismatches'])}, "
                f"uncertain (not compared) {money['uncertain_groups']}"
            )
            for line in (money["skipped"] + money["double_counted"] + money["short"] + money["cost_mismatches"])[:15]:
                print(f"    ! {line}")
        if emails:
            print(
                f"  emails: {emails['emails']} delivered ({dict(emails['by_transport'])}), {emails['distinct_emails']} "
                f"distinct, {emails['notifications']} notifications; duplicates {len(emails['duplicates'])}, same "
                f"email resent {emails['resent_same_email']}, pending at end {len(emails['pending_at_end'])}, sent "
                f"but not mailed {len(emails['sent_not_mailed'])}, budget oracle {emails['oracle_days']} days / "
                f"{len(emails['oracle_misses'])} missed, fired again after a resolve "
                f"{emails['refired_after_resolve']}, "
                f"health alarms on windows with late metric rows {emails['late_row_alarms']}, other false alarms "
                f"{len(emails['false_alarms'])}"
            )
            print(f"    notifications per rule: {emails['per_rule']}")
            for line in (
                emails["duplicates"]
                + emails["pending_at_end"]
                + emails["sent_not_mailed"]
                + emails["oracle_misses"]
                + emails["false_alarms"]
            )[:15]:
                print(f"    ! {line}")
        segments = [segment for segment in figures.rss_segments if len(segment) >= 8]
        if segments:
            longest = max(segments, key=len)
            growth = (longest[-1] - longest[len(longest) // 4]) / (len(longest) - len(longest) // 4)
            print(
                f"  host memory: {len(figures.rss_segments)} host lives; longest {len(longest)} costs runs, RSS "
                f"{longest[0]:.0f} -> {longest[-1]:.0f} MB (max {max(longest):.0f}), after warm-up {growth:+.2f} "
                "MB per costs run"
            )
        print(f"  processes left behind: {len(figures.leftover_processes)} {figures.leftover_processes[:3]}")
        print(f"  app log signals: {figures.log_lines}")
        print(f"  report: {self.data_dir / 'soak-report.json'}; logs: {self.data_dir}/host*.log")
        print("PASSED" if self.passed else "FAILED", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".local" / "soak")
    parser.add_argument("--drain-hours", type=float, default=4.0, help="fault-free hours after the week")
    parser.add_argument("--kill-share", type=float, default=0.08, help="share of costs runs SIGKILLed mid-run")
    parser.add_argument("--overlap-share", type=float, default=0.05, help="share of costs runs doubled on a 2nd host")
    parser.add_argument("--azurite-outages", type=int, default=3)
    parser.add_argument("--clock-pauses", type=int, default=2)
    parser.add_argument("--late-minutes", type=int, default=90, help="how late the gateway's late metric rows land")
    parser.add_argument("--no-faults", action="store_true", help="no stand-in faults (driver faults still apply)")
    args = parser.parse_args(argv)
    if args.data_dir.exists():
        import shutil

        shutil.rmtree(args.data_dir)
    args.data_dir.mkdir(parents=True)
    return Soak(args).run()


if __name__ == "__main__":
    raise SystemExit(main())
