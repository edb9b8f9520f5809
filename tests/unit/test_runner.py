"""The reconcilers' runner: rounds, wake-ups, a failed round, per-key tasks."""

from __future__ import annotations

import asyncio

from dcman.loops import runner
from dcman.loops.runner import Tasks, Timing


async def test_a_failed_round_is_logged_and_the_loop_goes_on() -> None:
    rounds: list[int] = []

    async def reconcile() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise RuntimeError("the database went away")

    task = asyncio.create_task(runner.run("test", reconcile, Timing(idle_s=0.01)))
    while len(rounds) < 3:
        await asyncio.sleep(0.01)
    task.cancel()
    assert rounds[:3] == [0, 1, 2]


async def test_a_wake_up_runs_a_round_before_the_idle_tick() -> None:
    wakeup = asyncio.Event()
    rounds = 0

    async def reconcile() -> None:
        nonlocal rounds
        rounds += 1

    task = asyncio.create_task(runner.run("test", reconcile, Timing(idle_s=60.0), wakeup))
    await asyncio.sleep(0.05)
    assert rounds == 1
    wakeup.set()
    await asyncio.sleep(0.05)
    task.cancel()
    assert rounds == 2


async def test_tasks_end_by_themselves_or_when_stopped_and_say_so() -> None:
    ended: list[str] = []
    tasks = Tasks("test", lambda: ended.append("ended"))
    tasks.start(1, lambda: asyncio.sleep(0))
    tasks.start(2, lambda: asyncio.sleep(60))
    await asyncio.sleep(0.01)
    assert 1 not in tasks and 2 in tasks
    await tasks.stop([2])
    assert len(tasks) == 0 and ended == ["ended", "ended"]
