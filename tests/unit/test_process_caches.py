"""What the control plane keeps in process memory: the agent list's version and the API keys
of recent requests (control_plane/cache.py), and when each is read again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from control_plane.cache import AgentPages, AgentsVersion, ApiKeyCache
from control_plane.changes import EVERYTHING, Changes
from control_plane.models import ApiKey
from control_plane.security import hash_api_key


class Table:
    """The database's answer to ``crud.agents_version``, counting the reads."""

    def __init__(self) -> None:
        self.version: AgentsVersion = (1, "t1")
        self.reads = 0

    async def read(self) -> AgentsVersion:
        self.reads += 1
        return self.version


async def test_the_agent_version_is_read_again_after_a_change_or_recheck_s() -> None:
    pages, table = AgentPages(trusted=lambda: True, recheck_s=0.2), Table()
    assert await pages.version(table.read) == (1, "t1")
    pages.put((1, "t1"), 100, 0, b"page one")
    assert await pages.version(table.read) == (1, "t1")
    assert table.reads == 1  # within recheck_s, no read

    table.version = (2, "t2")  # a write through this process or another one
    pages.changed("agent-2")
    assert await pages.version(table.read) == (2, "t2")
    assert table.reads == 2
    assert pages.get((2, "t2"), 100, 0) is None  # the old version's page is gone

    table.version = (3, "t3")  # a write nobody was told of
    assert await pages.version(table.read) == (2, "t2")
    time.sleep(0.25)
    assert await pages.version(table.read) == (3, "t3")


async def test_the_agent_version_is_read_every_time_while_changes_go_unheard() -> None:
    pages, table = AgentPages(trusted=lambda: False, recheck_s=60), Table()
    for _ in range(3):
        await pages.version(table.read)
    assert table.reads == 3


async def test_a_change_during_the_read_is_not_taken_as_read() -> None:
    pages, table = AgentPages(trusted=lambda: True, recheck_s=60), Table()

    async def read_while_changed() -> AgentsVersion:
        pages.changed()  # the write lands while the read is under way
        return await table.read()

    await pages.version(read_while_changed)
    await pages.version(table.read)
    assert table.reads == 2  # the first read may predate the change: read again
    await pages.version(table.read)
    assert table.reads == 2


def _key(key_id: str) -> ApiKey:
    return ApiKey(id=key_id, name="n", prefix="stimm_ab", key_hash=hash_api_key(key_id))


class Keys:
    def __init__(self) -> None:
        self.active = {"k1": _key("k1"), "k2": _key("k2")}
        self.reads = 0

    def reader(self, key_id: str) -> Callable[[], Awaitable[ApiKey | None]]:
        async def read() -> ApiKey | None:
            self.reads += 1
            return self.active.get(key_id)

        return read


async def test_api_keys_are_remembered_only_while_revocations_are_heard() -> None:
    trusted = False
    cache, keys = ApiKeyCache(trusted=lambda: trusted, ttl_s=60), Keys()
    for _ in range(3):
        assert await cache.find(hash_api_key("k1"), keys.reader("k1")) is not None
    assert keys.reads == 3  # nobody would tell this process of a revocation: read each time

    trusted = True
    for _ in range(3):
        found = await cache.find(hash_api_key("k1"), keys.reader("k1"))
        assert found is not None and found.id == "k1"
    assert keys.reads == 4
    assert found is not keys.active["k1"]  # a copy: the request's session owns its row

    del keys.active["k1"]  # revoked elsewhere, and told
    cache.revoked("k1")
    assert await cache.find(hash_api_key("k1"), keys.reader("k1")) is None
    assert await cache.find(hash_api_key("k1"), keys.reader("k1")) is None
    assert keys.reads == 6  # an unknown key is never remembered

    await cache.find(hash_api_key("k2"), keys.reader("k2"))
    cache.revoked(EVERYTHING)  # messages may have been lost
    await cache.find(hash_api_key("k2"), keys.reader("k2"))
    assert keys.reads == 8

    trusted = False  # the subscription dropped: what is remembered is not used
    await cache.find(hash_api_key("k2"), keys.reader("k2"))
    assert keys.reads == 9


async def test_a_remembered_key_is_read_again_after_ttl_s() -> None:
    cache, keys = ApiKeyCache(trusted=lambda: True, ttl_s=0.1), Keys()
    await cache.find(hash_api_key("k1"), keys.reader("k1"))
    await cache.find(hash_api_key("k1"), keys.reader("k1"))
    assert keys.reads == 1
    await asyncio.sleep(0.15)
    del keys.active["k1"]  # revoked, and the message lost
    assert await cache.find(hash_api_key("k1"), keys.reader("k1")) is None


async def test_a_revocation_during_the_read_keeps_the_key_out() -> None:
    cache, keys = ApiKeyCache(trusted=lambda: True, ttl_s=60), Keys()

    async def read_while_revoked() -> ApiKey | None:
        row = await keys.reader("k1")()
        cache.revoked("k1")  # revoked after the row was read
        return row

    await cache.find(hash_api_key("k1"), read_while_revoked)
    await cache.find(hash_api_key("k1"), keys.reader("k1"))
    assert keys.reads == 2


async def test_changes_reach_this_process_at_once_without_redis() -> None:
    changes = Changes(None)
    heard: list[tuple[str, str]] = []
    changes.on("agents", lambda item: heard.append(("agents", item)))
    changes.on("api-keys", lambda item: heard.append(("api-keys", item)))
    await changes.publish("agents", "a1")
    await changes.publish("api-keys", "k1")
    assert heard == [("agents", "a1"), ("api-keys", "k1")]
    assert not changes.listening  # nobody else can be heard from
    await changes.aclose()
