"""cool_down with an injected clock, sleep and CPU reading: minimum wait, adaptive wait, timeout."""

from __future__ import annotations

import pytest

from serving_energy.serving.protocol import cool_down
from serving_energy.serving.run_settings import CooldownSettings


class FakeTime:
    """A clock that only moves when the code under test sleeps or measures CPU usage."""

    def __init__(self, usages=()) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.usages = list(usages)
        self.measures: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def cpu_usage_pct(self, interval_s: float) -> float:
        self.measures.append(interval_s)
        self.now += interval_s
        return self.usages.pop(0) if len(self.usages) > 1 else self.usages[0]


def run(settings: CooldownSettings, fake: FakeTime):
    return cool_down(settings, cpu_usage_pct=fake.cpu_usage_pct, clock=fake.clock, sleep=fake.sleep)


def test_minimum_wait_only_when_not_adaptive():
    fake = FakeTime(usages=[99.0])
    record = run(CooldownSettings(min_s=60, adaptive=False), fake)
    assert fake.sleeps == [60]
    assert fake.measures == []  # the CPU is not even looked at
    assert record.waited_s == 60
    assert record.settled is True and record.last_cpu_usage_pct is None


def test_zero_minimum_returns_at_once():
    fake = FakeTime(usages=[99.0])
    record = run(CooldownSettings(min_s=0, adaptive=False), fake)
    assert record.waited_s == 0 and record.settled


def test_adaptive_waits_until_cpu_is_below_the_threshold():
    fake = FakeTime(usages=[80.0, 40.0, 12.0, 9.5, 50.0])
    record = run(
        CooldownSettings(min_s=5, adaptive=True, cpu_usage_below_pct=10, timeout_s=600), fake
    )
    assert fake.sleeps == [5]
    assert fake.measures == [1.0, 1.0, 1.0, 1.0]  # stopped at the first reading below 10 %
    assert record.waited_s == pytest.approx(9.0)
    assert record.settled is True
    assert record.last_cpu_usage_pct == 9.5


def test_adaptive_already_idle_after_the_minimum():
    fake = FakeTime(usages=[3.0])
    record = run(CooldownSettings(min_s=2, adaptive=True, cpu_usage_below_pct=10), fake)
    assert (
        record.waited_s == pytest.approx(3.0)
        and record.settled
        and record.last_cpu_usage_pct == 3.0
    )


def test_threshold_is_strict():
    fake = FakeTime(usages=[10.0, 9.99])
    record = run(CooldownSettings(min_s=0, adaptive=True, cpu_usage_below_pct=10), fake)
    assert len(fake.measures) == 2 and record.last_cpu_usage_pct == 9.99


def test_adaptive_timeout_is_recorded_as_not_settled():
    fake = FakeTime(usages=[95.0])  # never calms down
    record = run(
        CooldownSettings(min_s=10, adaptive=True, cpu_usage_below_pct=10, timeout_s=30), fake
    )
    assert record.settled is False
    assert record.last_cpu_usage_pct == 95.0
    assert 30 <= record.waited_s <= 31  # gave up at the timeout, give or take one reading
    assert len(fake.measures) == 20  # 10 s minimum, then one-second readings up to 30 s
