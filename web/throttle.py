"""Sign-in throttling that slows guessing without ever locking the real owner out.

Three limits, all kept in memory and bounded: failures per client address in a sliding window (guessing
many names from one place), an increasing delay per name after a few failures (guessing one name from
many places) from which addresses where that name signed in before are exempt, and one password check in
flight per address. A refusal costs no password hash.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import TypeVar

ADDRESS_FAILURES = 20
ADDRESS_WINDOW_S = 15 * 60.0
NAME_FREE_FAILURES = 5
NAME_MAX_DELAY_S = 60.0
# A name's failures are forgotten after an hour without one.
NAME_FORGET_S = 3600.0
# Names and addresses remembered; an attacker inventing them cannot grow memory without bound.
KEPT = 10_000
KNOWN_ADDRESSES_PER_NAME = 20


@dataclass(slots=True)
class _NameRecord:
    streak: int = 0
    last_failure: float = 0.0


V = TypeVar("V")


def _bounded_put(table: OrderedDict[str, V], key: str, value: V) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > KEPT:
        table.popitem(last=False)


class SignInThrottle:
    """Decides whether a sign-in attempt may be checked, and learns from its outcome."""

    def __init__(
        self,
        *,
        address_failures: int = ADDRESS_FAILURES,
        address_window_s: float = ADDRESS_WINDOW_S,
        name_free_failures: int = NAME_FREE_FAILURES,
        name_max_delay_s: float = NAME_MAX_DELAY_S,
    ) -> None:
        self.address_failures, self.address_window_s = address_failures, address_window_s
        self.name_free_failures, self.name_max_delay_s = name_free_failures, name_max_delay_s
        self._by_address: OrderedDict[str, deque[float]] = OrderedDict()  # times of recent failures
        self._by_name: OrderedDict[str, _NameRecord] = OrderedDict()
        self._known: OrderedDict[str, list[str]] = OrderedDict()  # addresses where the name signed in
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()

    def begin(self, name: str, address: str, now: float, device: str = "") -> float:
        """0 when the attempt may be checked (then `finish` must follow); else seconds to wait.

        `device` is the token a browser got at an earlier successful sign-in: like a known address, it
        exempts the owner from the delay that guesses at the name from elsewhere cause."""
        with self._lock:
            if address in self._in_flight:
                return 1.0
            failures = self._failures_of(address, now)
            if len(failures) >= self.address_failures:
                return max(1.0, failures[0] + self.address_window_s - now)
            record = self._by_name.get(name)
            if record is not None and now - record.last_failure > NAME_FORGET_S:
                record = None
            if record is not None and not self._is_known(name, address, device):
                wait = record.last_failure + self._delay(record.streak) - now
                if wait > 0:
                    return wait
            # Counted before the (slow) check, so guesses sent in parallel from many addresses cannot all
            # see the old count.
            record = record or _NameRecord()
            record.streak += 1
            record.last_failure = now
            _bounded_put(self._by_name, name, record)
            self._in_flight.add(address)
            return 0.0

    def known(self, name: str, address: str, device: str = "") -> bool:
        """Whether the name signed in before from this address or this browser."""
        with self._lock:
            return self._is_known(name, address, device)

    def cancel(self, name: str, address: str) -> None:
        """Forget an attempt that `begin` allowed but that was never checked."""
        with self._lock:
            self._in_flight.discard(address)
            record = self._by_name.get(name)
            if record is not None and record.streak > 0:
                record.streak -= 1

    def finish(self, name: str, address: str, succeeded: bool, now: float, device: str = "") -> None:
        """Record the outcome of a checked attempt (and the browser's device token after a success)."""
        with self._lock:
            self._in_flight.discard(address)
            if succeeded:
                # The owner signing in where she is known does not clear the guesses made elsewhere.
                record = self._by_name.get(name)
                if not self._is_known(name, address, device):
                    self._by_name.pop(name, None)
                elif record is not None:
                    record.streak = max(0, record.streak - 1)
                fresh = [address, f"device:{device}"] if device else [address]
                kept = [a for a in self._known.get(name, []) if a not in fresh]
                _bounded_put(self._known, name, [*kept, *fresh][-KNOWN_ADDRESSES_PER_NAME:])
                return
            failures = self._failures_of(address, now)
            failures.append(now)
            _bounded_put(self._by_address, address, failures)
            record = self._by_name.get(name) or _NameRecord(streak=1)
            record.last_failure = now
            _bounded_put(self._by_name, name, record)

    def _delay(self, streak: int) -> float:
        """No delay for the first few failures, then 1, 2, 4... seconds up to the cap."""
        if streak < self.name_free_failures:
            return 0.0
        return float(min(2.0 ** (streak - self.name_free_failures), self.name_max_delay_s))

    def _failures_of(self, address: str, now: float) -> deque[float]:
        failures = self._by_address.get(address) or deque()
        while failures and failures[0] <= now - self.address_window_s:
            failures.popleft()
        return failures

    def _is_known(self, name: str, address: str, device: str) -> bool:
        known = self._known.get(name, [])
        return address in known or (bool(device) and f"device:{device}" in known)
