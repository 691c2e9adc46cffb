"""The group-commit batcher (pure logic: no database, no Redis)."""

from __future__ import annotations

import asyncio

import pytest

from pickup.batching import Batcher


async def test_requests_arriving_during_a_write_form_the_next_batch():
    batches: list[list[int]] = []

    async def write_many(items: list[int]) -> list[int]:
        batches.append(items)
        await asyncio.sleep(0.05)
        return [item * 10 for item in items]

    batcher = Batcher(write_many)
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0.01)  # the first write is under way
    rest = [asyncio.create_task(batcher.submit(n)) for n in (2, 3, 4)]

    assert await first == 10
    assert await asyncio.gather(*rest) == [20, 30, 40]
    assert batches == [[1], [2, 3, 4]]


async def test_an_item_refused_by_the_write_fails_only_its_own_caller():
    async def write_many(items: list[int]) -> list[object]:
        return [ValueError(f"odd {item}") if item % 2 else item for item in items]

    batcher = Batcher(write_many)
    results = await asyncio.gather(*(batcher.submit(n) for n in range(4)), return_exceptions=True)

    assert [str(result) if isinstance(result, ValueError) else result for result in results] == [0, "odd 1", 2, "odd 3"]


async def test_a_batch_whose_write_breaks_is_split_until_the_breaking_item_is_alone():
    calls: list[list[str]] = []

    async def write_many(items: list[str]) -> list[str]:
        calls.append(items)
        if "poison" in items:
            raise RuntimeError("the write broke")
        return [item.upper() for item in items]

    batcher = Batcher(write_many, window=0.01)
    results = await asyncio.gather(*(batcher.submit(item) for item in ("a", "poison", "b")), return_exceptions=True)

    assert results[0] == "A" and results[2] == "B"
    assert isinstance(results[1], RuntimeError)
    assert calls == [["a", "poison", "b"], ["a"], ["poison", "b"], ["poison"], ["b"]]


async def test_one_breaking_item_in_a_large_batch_costs_the_others_a_few_writes_not_one_each():
    calls: list[list[int]] = []

    async def write_many(items: list[int]) -> list[int]:
        calls.append(items)
        if 13 in items:
            raise RuntimeError("the write broke")
        return items

    batcher = Batcher(write_many, window=0.01, max_batch=1000)
    results = await asyncio.gather(*(batcher.submit(n) for n in range(512)), return_exceptions=True)

    assert isinstance(results[13], RuntimeError)
    assert [result for n, result in enumerate(results) if n != 13] == [n for n in range(512) if n != 13]
    assert len(calls) <= 1 + 2 * 9  # two writes per halving, 512 = 2**9


async def test_batches_are_capped():
    sizes: list[int] = []

    async def write_many(items: list[int]) -> list[int]:
        sizes.append(len(items))
        return items

    batcher = Batcher(write_many, window=0.01, max_batch=3)
    assert await asyncio.gather(*(batcher.submit(n) for n in range(7))) == list(range(7))
    assert sizes == [3, 3, 1]


@pytest.mark.parametrize("window", [0.0, 0.01])
async def test_a_lone_request_is_written(window):
    async def write_many(items: list[str]) -> list[str]:
        return items

    assert await Batcher(write_many, window=window).submit("alone") == "alone"
