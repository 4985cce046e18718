"""Health of real servers: a rise/fall machine per real, a quorum gate per service.

Pure and clock-injected like `vrrp.py`: every input takes `now` (seconds on a
monotonic clock) and returns the actions the shell carries out; `deadline`
is the one instant the shell must call `timer_fired(now)` at. Randomness is
injected too: the warmup spread is a `jitter` in [0, 1) chosen by the shell.

The words are keepalived's (keepalived.conf(5), "real_server" checkers):

* a *check* runs every `delay_loop` seconds after the previous one ended;
* while the real is up, a failed attempt is retried `retry` more times,
  `delay_before_retry` apart, before the check counts as failed (so one lost
  SYN does not pull a server);
* `rise` / `fall` (an lvsha addition, as in haproxy): consecutive good /
  failed checks needed to come back / to leave. keepalived behaves as
  rise = fall = 1, the default;
* `warmup`: the first check waits `warmup * jitter`, so that thousands of
  checks configured together do not all fire in the same millisecond;
* `initial_up`: keepalived assumes a real is up until a check fails; with
  `alpha` (here `initial_state = "down"`) it is down until proven.

Per virtual service, keepalived's `quorum` and `hysteresis` decide when the
`sorry_server` replaces the real servers; `apply_health()` turns config +
health + quorum into the virtual servers `desired_ipvs()` should program.

Inputs are Protocols owned here (`CheckedRealServer`, `CheckedService`, the
check shapes), for the reason given in desired.py: lvsha.config's frozen
dataclasses satisfy them without conversion and the core never imports
lvsha.config. `apply_health` rebuilds its inputs with dataclasses.replace,
so those two Protocols also require a dataclass (`__dataclass_fields__`),
and it returns the caller's own type.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

from lvsha.core.desired import DestKey, HealthMap, ServiceIdentity, ServiceKey, service_key

# keepalived.conf(5): "retry ... Default: 1 unless specified below" (MISC_CHECK: 0);
# "delay_before_retry ... 3 seconds for HTTP_GET and SSL_GET, and 1 second otherwise".
DEFAULT_RETRY = 1
DEFAULT_RETRY_MISC = 0
DEFAULT_DELAY_BEFORE_RETRY = 1.0
DEFAULT_DELAY_BEFORE_RETRY_HTTP = 3.0

# How long past its own timeout a probe may stay silent before the machine
# gives up on it. Probes enforce their timeout themselves; this is a safety
# net against a lost result, generous so that a busy checker does not pull
# healthy servers because of its own slowness.
RESULT_GRACE = 5.0


@dataclass(frozen=True, slots=True)
class HealthParams:
    """What one real server's machine needs from the configuration."""

    delay_loop: float
    timeout: float
    retry: int = DEFAULT_RETRY
    delay_before_retry: float = DEFAULT_DELAY_BEFORE_RETRY
    rise: int = 1
    fall: int = 1
    warmup: float = 0.0
    initial_up: bool = True
    result_grace: float = RESULT_GRACE

    def __post_init__(self) -> None:
        if self.delay_loop <= 0 or self.timeout <= 0:
            raise ValueError("delay_loop and timeout must be positive")
        if self.rise < 1 or self.fall < 1 or self.retry < 0:
            raise ValueError("rise and fall must be >= 1, retry >= 0")
        if self.warmup < 0 or self.delay_before_retry < 0 or self.result_grace < 0:
            raise ValueError("warmup, delay_before_retry and result_grace must be >= 0")


# ----------------------------------------------------------------- inputs --
# Read-only properties, so that frozen dataclasses satisfy them.


class ConnectCheck(Protocol):
    """tcp_check, http_get, ssl_get: a probe bounded by its connect timeout."""

    @property
    def connect_timeout(self) -> float: ...


class CommandCheck(Protocol):
    """misc_check: a command with an optional timeout (None: delay_loop)."""

    @property
    def timeout(self) -> float | None: ...


class CheckedRealServer(Protocol):
    """What the health machine and the quorum gate read of one real server."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    @property
    def address(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def weight(self) -> int: ...
    @property
    def tcp_check(self) -> ConnectCheck | None: ...
    @property
    def http_get(self) -> ConnectCheck | None: ...
    @property
    def ssl_get(self) -> ConnectCheck | None: ...
    @property
    def misc_check(self) -> CommandCheck | None: ...
    @property
    def retry(self) -> int | None: ...
    @property
    def delay_before_retry(self) -> float | None: ...
    @property
    def rise(self) -> int: ...
    @property
    def fall(self) -> int: ...
    @property
    def warmup(self) -> float | None: ...
    @property
    def initial_state(self) -> str: ...


class CheckedService(ServiceIdentity, Protocol):
    """What health, quorum and `apply_health` read of one virtual service."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    @property
    def delay_loop(self) -> float: ...
    @property
    def real_servers(self) -> Sequence[CheckedRealServer]: ...
    @property
    def sorry_server(self) -> CheckedRealServer | None: ...
    @property
    def quorum(self) -> int: ...
    @property
    def hysteresis(self) -> int: ...
    @property
    def inhibit_on_failure(self) -> bool: ...


ServiceT = TypeVar("ServiceT", bound=CheckedService)


# ---------------------------------------------------------------- actions --


@dataclass(frozen=True, slots=True)
class StartProbe:
    """Run the configured probe now, give up after `timeout`; report with `seq`."""

    seq: int
    timeout: float


@dataclass(frozen=True, slots=True)
class HealthChanged:
    """The real server became healthy or unhealthy; IPVS must follow."""

    healthy: bool
    reason: str


Action = StartProbe | HealthChanged


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    """The last probe's result, as `lvsha status` shows it (`at` is monotonic)."""

    ok: bool
    latency: float
    detail: str
    at: float


class RealServerHealth:
    """The health of one real server, driven by probe results and the clock.

    Counters: `successes` and `failures` count consecutive *checks*; `attempt`
    counts the retries inside the current check. At most one probe is in
    flight; a result carrying another `seq` is stale and ignored.
    """

    def __init__(self, params: HealthParams, jitter: float = 0.0) -> None:
        if not 0.0 <= jitter < 1.0:
            raise ValueError(f"jitter must be in [0, 1), not {jitter}")
        self.params = params
        self.jitter = jitter
        self.healthy = params.initial_up
        self.since: float | None = None
        self.last: ProbeOutcome | None = None
        self.successes = 0
        self.failures = 0
        self.attempt = 0
        self.seq = 0
        self.checks = 0
        self.probe_at: float | None = None
        self.overdue_at: float | None = None

    @property
    def in_flight(self) -> bool:
        return self.overdue_at is not None

    @property
    def deadline(self) -> float | None:
        """When to call `timer_fired`: the next probe, or the give-up instant of this one."""
        return self.overdue_at if self.overdue_at is not None else self.probe_at

    # ------------------------------------------------------------- inputs --

    def start(self, now: float) -> list[Action]:
        """Begin checking: the first probe after `warmup * jitter` seconds."""
        self.since = now
        self.probe_at = now + self.params.warmup * self.jitter
        self.overdue_at = None
        return []

    def stop(self) -> None:
        """Stop checking; a result still in flight will be ignored."""
        self.probe_at = None
        self.overdue_at = None
        self.seq += 1

    def timer_fired(self, now: float) -> list[Action]:
        """Start a due probe, or fail one whose result never came."""
        if self.overdue_at is not None:
            if now < self.overdue_at:
                return []
            return self._result(now, False, now - self._started_at(), "no result from the probe")
        if self.probe_at is None or now < self.probe_at:
            return []
        self.seq += 1
        self.probe_at = None
        self.overdue_at = now + self.params.timeout + self.params.result_grace
        return [StartProbe(self.seq, self.params.timeout)]

    def probe_result(
        self, now: float, ok: bool, latency: float, detail: str, seq: int | None = None
    ) -> list[Action]:
        """The probe started by the last `StartProbe` finished."""
        if self.overdue_at is None or (seq is not None and seq != self.seq):
            return []  # stale: given up on, or stopped
        return self._result(now, ok, latency, detail)

    # ----------------------------------------------------------- internal --

    def _started_at(self) -> float:
        assert self.overdue_at is not None
        return self.overdue_at - self.params.timeout - self.params.result_grace

    def _result(self, now: float, ok: bool, latency: float, detail: str) -> list[Action]:
        p = self.params
        self.overdue_at = None
        self.last = ProbeOutcome(ok, latency, detail, now)
        if not ok and self.healthy and self.attempt < p.retry:
            self.attempt += 1  # keepalived retries only while the real is alive
            self.probe_at = now + p.delay_before_retry
            return []
        self.attempt = 0
        self.checks += 1
        self.probe_at = now + p.delay_loop
        if ok:
            self.failures = 0
            self.successes += 1
            if not self.healthy and self.successes >= p.rise:
                return self._change(now, True, f"{self.successes} good checks: {detail}")
        else:
            self.successes = 0
            self.failures += 1
            if self.healthy and self.failures >= p.fall:
                return self._change(now, False, f"{self.failures} failed checks: {detail}")
        return []

    def _change(self, now: float, healthy: bool, reason: str) -> list[Action]:
        self.healthy = healthy
        self.since = now
        return [HealthChanged(healthy, reason)]


# ----------------------------------------------------------------- params --


def health_params(vs: CheckedService, rs: CheckedRealServer) -> HealthParams | None:
    """The machine's parameters for one real server, or None if it has no check.

    Defaults follow keepalived: `retry` 1 (0 for misc_check), `delay_before_retry`
    3 s for HTTP(S) and 1 s otherwise, `warmup` up to `delay_loop`, and a
    misc_check's timeout is `delay_loop` unless given.
    """
    retry = DEFAULT_RETRY
    before_retry = DEFAULT_DELAY_BEFORE_RETRY
    if rs.tcp_check is not None:
        timeout = rs.tcp_check.connect_timeout
    elif rs.http_get is not None or rs.ssl_get is not None:
        http = rs.http_get or rs.ssl_get
        assert http is not None
        timeout = http.connect_timeout
        before_retry = DEFAULT_DELAY_BEFORE_RETRY_HTTP
    elif rs.misc_check is not None:
        timeout = rs.misc_check.timeout or vs.delay_loop
        retry = DEFAULT_RETRY_MISC
    else:
        return None
    return HealthParams(
        delay_loop=vs.delay_loop,
        timeout=timeout,
        retry=rs.retry if rs.retry is not None else retry,
        delay_before_retry=(
            rs.delay_before_retry if rs.delay_before_retry is not None else before_retry
        ),
        rise=rs.rise,
        fall=rs.fall,
        warmup=rs.warmup if rs.warmup is not None else vs.delay_loop,
        initial_up=rs.initial_state == "up",
    )


def spread(index: int) -> float:
    """A seed-free jitter in [0, 1) for the index-th check: the golden-ratio sequence.

    Consecutive indexes land far apart and any prefix of the sequence covers
    [0, 1) evenly, so N checks with the same warmup start evenly spread.
    """
    return (index * 0.6180339887498949) % 1.0


# ----------------------------------------------------------------- quorum --


@dataclass(frozen=True, slots=True)
class QuorumChanged:
    """A virtual service gained or lost its quorum (log it, run no hook yet)."""

    service: ServiceKey
    up: bool
    weight: int
    reason: str


def quorum_next(up: bool | None, weight: int, quorum: int, hysteresis: int) -> bool:
    """keepalived's update_quorum_state(): is the quorum up, given the live weight?

    Gained at `weight >= quorum + hysteresis`, lost at `weight < quorum -
    hysteresis` or when no weight is left at all. `up is None` is the first
    evaluation, which (as keepalived's `init`) starts from up and applies the
    loss rule only.
    """
    lost = weight == 0 or weight < quorum - hysteresis
    if up is None or up:
        return not lost
    return weight > 0 and weight >= quorum + hysteresis


def live_weight(vs: CheckedService, health: HealthMap) -> int:
    """Total configured weight of the healthy real servers of one service."""
    key = service_key(vs)
    return sum(
        rs.weight for rs in vs.real_servers if health.get((key, DestKey(rs.address, rs.port)), True)
    )


class QuorumGates:
    """The quorum state of every virtual service; stateful because of hysteresis."""

    def __init__(self) -> None:
        self.up: dict[ServiceKey, bool] = {}
        self.weight: dict[ServiceKey, int] = {}

    def update(
        self, virtual_servers: Iterable[CheckedService], health: HealthMap, *, forget: bool = True
    ) -> list[QuorumChanged]:
        """Re-evaluate these services; forget the others (unless `forget=False`).

        `forget=False` re-evaluates only the services whose reals changed
        health, the rest keeping their state: one health change at 10,000
        real servers costs one service's sum, not every service's.
        """
        changes = []
        seen = set()
        for vs in virtual_servers:
            key = service_key(vs)
            seen.add(key)
            weight = live_weight(vs, health)
            before = self.up.get(key)
            after = quorum_next(before, weight, vs.quorum, vs.hysteresis)
            self.up[key] = after
            self.weight[key] = weight
            if after != before and (before is not None or not after):
                verb = "gained" if after else "lost"
                changes.append(
                    QuorumChanged(
                        key,
                        after,
                        weight,
                        f"quorum {verb}: live weight {weight}, quorum {vs.quorum} "
                        f"hysteresis {vs.hysteresis}",
                    )
                )
        for key in set(self.up) - seen if forget else ():
            del self.up[key]
            self.weight.pop(key, None)
        return changes


def apply_health(
    virtual_servers: Iterable[ServiceT],
    health: HealthMap,
    quorum_up: Mapping[ServiceKey, bool],
) -> tuple[ServiceT, ...]:
    """The virtual servers as IPVS should hold them now; feed to `desired_ipvs()`.

    A failed real is dropped, or kept at weight 0 with `inhibit_on_failure`
    (its established connections drain). When a service with a
    `sorry_server` has lost its quorum, every real is treated as failed and
    the sorry server is the one destination (keepalived: "all real servers
    will be brought down ... and be replaced with the sorry server"). A real
    missing from `health` is healthy. The result needs no health map.
    """
    # One pass over the map for the failed reals; a service with none (and no
    # lost quorum) is passed on as it is: copying 1,000 configs took 50 ms.
    down: dict[ServiceKey, set[DestKey]] = {}
    for (skey, dkey), up in health.items():
        if not up:
            down.setdefault(skey, set()).add(dkey)
    out = []
    for vs in virtual_servers:
        key = service_key(vs)
        sorry = vs.sorry_server is not None and not quorum_up.get(key, True)
        failed = down.get(key)
        if failed is None and not sorry:
            out.append(vs)
            continue
        reals = []
        for rs in vs.real_servers:
            healthy = not sorry and DestKey(rs.address, rs.port) not in (failed or ())
            if healthy:
                reals.append(rs)
            elif vs.inhibit_on_failure:
                reals.append(dataclasses.replace(rs, weight=0))
        if sorry:
            assert vs.sorry_server is not None
            reals.append(vs.sorry_server)
        out.append(dataclasses.replace(vs, real_servers=tuple(reals)))
    return tuple(out)
