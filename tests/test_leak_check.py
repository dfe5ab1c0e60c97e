"""The leak check itself can fail: a loop that ends with a task of its own still running is caught."""

from __future__ import annotations

import asyncio

from tests import conftest


def test_a_forgotten_task_is_reported() -> None:
    async def main() -> None:
        asyncio.get_running_loop().create_task(asyncio.sleep(3600), name="forgotten")

    conftest._checked_run(main())
    caught = list(conftest._leaked_tasks)
    conftest._leaked_tasks.clear()  # this test's own leak is the point: do not fail it
    assert caught and caught[0].startswith("forgotten")


def test_a_cancelled_task_that_finishes_in_time_is_not_a_leak() -> None:
    async def main() -> None:
        task = asyncio.get_running_loop().create_task(asyncio.sleep(3600))
        task.cancel()

    conftest._checked_run(main())
    assert not conftest._leaked_tasks
