"""The redis-py clients behind a :class:`~.redis_config.RedisTarget`, and the few questions that
depend on its shape: which node is the primary, how to start afresh after an outage, and how
to run the publishing script and ``WAIT`` on one connection.

No client retries by itself (``Retry(NoBackoff(), 0)``): a publish whose reply was lost may
have run, and running it again would publish the message twice. The reader reconnects on its
own schedule (:mod:`.redis`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterator, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AskError, MovedError, ReadOnlyError, RedisClusterException
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .redis_config import RedisTarget

__all__ = ["UNAVAILABLE", "RedisClients", "during_outage", "suppress_outage"]

#: "The broker cannot do this now": a lost or refused connection, a timeout, a read-only
#: replica, a cluster without a primary for the slot (ClusterDownError, SlotNotCoveredError, ...).
UNAVAILABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,
    OSError,
    ReadOnlyError,
    RedisClusterException,
)


def during_outage(exc: BaseException) -> bool:
    """``exc`` means the broker is unavailable: it is one of :data:`UNAVAILABLE`, or was raised
    while redis-py was handling one.

    Why the chain: seen once in CI during a Sentinel failover, the reader's ``get_message`` got
    "Connection closed by server", and redis-py's reconnect (``HELLO`` on the new primary)
    raised another error "during handling of" it (its type was cut from the log). A likely
    cause: two coroutines share the pub/sub connection (the reader reading, a new subscriber
    subscribing) and both reconnect the same connection object. Either way it is the outage,
    not a bug in the reader."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, UNAVAILABLE):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


@contextlib.contextmanager
def suppress_outage() -> Iterator[None]:
    """Swallow what :func:`during_outage` calls an outage; anything else propagates."""
    try:
        yield
    except Exception as exc:
        if not during_outage(exc):
            raise


#: Seconds to wait for a TCP connection to a Redis server, and for a sentinel's answer.
CONNECT_TIMEOUT = 2.0
SENTINEL_TIMEOUT = 0.5
#: Seconds a command may wait for its reply (plus ``replica_timeout`` for ``WAIT``): a primary
#: that stopped answering (a partition, a frozen machine) fails a publish instead of hanging it.
COMMAND_TIMEOUT = 5.0
#: Seconds a question about the topology may take (a cluster node's ``CLUSTER SLOTS``).
PROBE_TIMEOUT = 1.0


def _no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisClients:
    """``client`` runs commands (a plain, sentinel-managed or cluster client); ``sentinel`` is
    redis-py's ``Sentinel`` for the sentinel form, else None."""

    def __init__(self, target: RedisTarget) -> None:
        self.target = target
        self.sentinel: Any = None
        #: Cluster with durability: one plain client per primary for "script + WAIT".
        self._node_clients: dict[tuple[str, int], Any] = {}
        #: Cluster: small clients that ask nodes for the slot map (short timeouts).
        self._probes: dict[tuple[str, int], Any] = {}
        #: Cluster: a node that stopped being a primary (``host:port``): asked last for the map.
        self.suspect: str | None = None
        common: dict[str, Any] = {
            "socket_connect_timeout": CONNECT_TIMEOUT,
            "socket_timeout": COMMAND_TIMEOUT + target.replica_timeout,
            "retry": _no_retry(),
        }
        if target.kind == "single":
            self.client: Any = aioredis.from_url(target.redis_url, health_check_interval=10, **common)
        elif target.kind == "sentinel":
            from redis.asyncio.sentinel import Sentinel

            self.sentinel = Sentinel(  # type: ignore[no-untyped-call]
                list(target.hosts),
                sentinel_kwargs={
                    "socket_connect_timeout": SENTINEL_TIMEOUT,
                    "socket_timeout": SENTINEL_TIMEOUT,
                    "retry": _no_retry(),
                    **target.sentinel_options(),
                },
            )
            self.client = self.sentinel.master_for(
                target.service,
                db=target.db,
                health_check_interval=10,
                **common,
                **target.connection_options(),
            )
        else:
            from redis.asyncio.cluster import ClusterNode, RedisCluster

            self.client = RedisCluster(
                startup_nodes=[ClusterNode(host, port) for host, port in target.hosts],
                **common,
                **target.connection_options(),
            )

    # -- which node -------------------------------------------------------------------------------
    def node(self) -> str:
        """The primary this process last reached (``host:port``; the primaries for a cluster)."""
        if self.target.kind == "cluster":
            with contextlib.suppress(Exception):
                return ",".join(sorted(node.name for node in self.client.get_primaries()))
            return ""
        pool = self.client.connection_pool
        if self.target.kind == "sentinel":
            address = pool.master_address
            return f"{address[0]}:{address[1]}" if address else ""
        kwargs = pool.connection_kwargs
        return str(kwargs["path"]) if kwargs.get("path") else f"{kwargs.get('host')}:{kwargs.get('port')}"

    async def primary_now(self) -> str | None:
        """Who is primary now, asked afresh: the node the sentinels name (``MasterNotFoundError``
        when none), a cluster's primaries (``CLUSTER SLOTS`` asked of up to three nodes at once,
        the first answer wins: one frozen node must not hold the question up); None for one
        Redis."""
        if self.sentinel is not None:
            host, port = await self.sentinel.discover_master(self.target.service)
            return f"{host}:{port}"
        if self.target.kind != "cluster":
            return None
        nodes = list(self.client.get_nodes())
        random.shuffle(nodes)
        asks = [asyncio.ensure_future(self._probe(node.host, node.port)) for node in nodes[:3]]
        try:
            for answer in asyncio.as_completed(asks):
                with contextlib.suppress(*UNAVAILABLE):
                    return await answer
        finally:
            for ask in asks:
                if ask.done() and not ask.cancelled():
                    ask.exception()  # retrieved: an unanswered node is no news
                ask.cancel()
        raise RedisConnectionError("no cluster node answered CLUSTER SLOTS")

    async def _probe(self, host: str, port: int) -> str:
        client = self._probes.get((host, port))
        if client is None:
            client = self._probes[(host, port)] = aioredis.Redis(
                host=host,
                port=port,
                socket_connect_timeout=PROBE_TIMEOUT,
                socket_timeout=PROBE_TIMEOUT,
                retry=_no_retry(),
                **self.target.connection_options(),
            )
        slots: Any = await client.execute_command("CLUSTER", "SLOTS")
        primaries = {f"{_text(primary[0])}:{int(primary[1])}" for _start, _end, primary, *_ in slots}
        return ",".join(sorted(primaries))

    # -- outages ------------------------------------------------------------------------------------
    async def reset(self) -> None:
        """Drop pooled connections (they lead to a dead or replaced server); for a cluster,
        read the slot map again."""
        with contextlib.suppress(Exception):
            if self.target.kind == "cluster":
                # Bounded: a frozen node asked first would hold it for a command timeout; the
                # reader tries again soon, and the nodes are asked in another order then.
                initialize = self.client.nodes_manager.initialize(last_failed_node_name=self.suspect)
                await asyncio.wait_for(initialize, 2 * PROBE_TIMEOUT)
            else:
                await self.client.connection_pool.disconnect()
        for client in self._node_clients.values():
            with contextlib.suppress(Exception):
                await client.connection_pool.disconnect()

    async def close(self) -> None:
        clients = [self.client, *self._node_clients.values(), *self._probes.values()]
        self._node_clients.clear()
        self._probes.clear()
        for client in clients:
            with contextlib.suppress(Exception):
                await client.aclose()
        if self.sentinel is not None:
            with contextlib.suppress(Exception):
                await self.sentinel.aclose()

    # -- durability -----------------------------------------------------------------------------------
    async def eval_and_wait(
        self, script: str, keys: Sequence[str], args: Sequence[Any], timeout: float
    ) -> tuple[Any, int]:
        """Run ``script`` then ``WAIT 1 <timeout>`` on the same connection (``WAIT`` counts the
        replicas that have this connection's writes); returns the script's result and that count."""
        if self.target.kind != "cluster":
            return await _eval_and_wait(self.client, script, keys, args, timeout)
        for attempt in (1, 2):
            node = self.client.get_node_from_key(keys[0])
            try:
                return await _eval_and_wait(
                    self._node_client(node.host, node.port), script, keys, args, timeout
                )
            except (MovedError, AskError):
                # The slot moved (a failover, a resharding): the script did not run; read the
                # slot map again and go to the new owner once.
                if attempt == 2:
                    raise
                await self.client.nodes_manager.initialize()
            except (ConnectionError, RedisConnectionError, RedisTimeoutError):
                # The node is gone: the next publish asks the cluster who owns the slot now
                # (this client bypasses RedisCluster, which would have done so itself).
                with contextlib.suppress(Exception):
                    await self.client.nodes_manager.initialize()
                raise
        raise AssertionError("unreachable")

    def _node_client(self, host: str, port: int) -> Any:
        client = self._node_clients.get((host, port))
        if client is None:
            client = self._node_clients[(host, port)] = aioredis.Redis(
                host=host,
                port=port,
                socket_connect_timeout=CONNECT_TIMEOUT,
                socket_timeout=COMMAND_TIMEOUT + self.target.replica_timeout,
                health_check_interval=10,
                retry=_no_retry(),
                **self.target.connection_options(),
            )
        return client


async def _eval_and_wait(
    client: Any, script: str, keys: Sequence[str], args: Sequence[Any], timeout: float
) -> tuple[Any, int]:
    async with client.pipeline(transaction=False) as pipe:
        pipe.eval(script, len(keys), *keys, *args)
        pipe.execute_command("WAIT", 1, max(1, round(timeout * 1000)))
        result, replicas = await pipe.execute()
    return result, int(replicas)
