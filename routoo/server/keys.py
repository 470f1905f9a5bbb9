"""API keys and their durable budgets: every key's spend in a SQLite ledger that survives restarts.

A ``DurableBudget`` is a ``routoo.budget.Budget`` whose reservations and settlements are
also written to the ``SpendLedger`` (SQLite, WAL) as they happen, each in one transaction:
a reservation is a row, its settlement deletes the row and adds the real cost to the
key's spend. On start the ledger folds every reservation still open (the server stopped
while the call was in flight) into its key's spend at the reserved amount: whether the
provider billed it is unknown, so it counts as spent, never as free. A key can therefore
not pass its cap by restarting the server.

The ledger file belongs to one server process: it is opened in SQLite's exclusive locking
mode, so a second server on the same file fails at start instead of counting apart.
A write that fails before a call (the disk is full) refuses the call; one that fails
after it is logged and leaves the reservation row, which the next start counts as spent.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from routoo.budget import Budget, BudgetMode, Reservation, SpendRecord
from routoo.errors import ConfigError
from routoo.server.config import KeySettings

log = logging.getLogger(__name__)

# The key of a server without keys (loopback only): its spend is recorded all the same.
ANONYMOUS = "anonymous"
# The limit of a key without a budget: a soft budget this large never steers nor refuses.
UNLIMITED_USD = sys.float_info.max
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS spend (key TEXT PRIMARY KEY, spent_usd REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS reservations (key TEXT NOT NULL, id INTEGER NOT NULL, "
    "amount_usd REAL NOT NULL, PRIMARY KEY (key, id))",
)


class SpendLedger:
    """Every key's spend and open reservations in one SQLite file; ``open`` before use."""

    def __init__(self, path: str | Path, synchronous: str = "full") -> None:
        if synchronous not in ("full", "normal"):
            raise ConfigError(f"the ledger's synchronous must be 'full' or 'normal', not {synchronous!r}")
        self.path = Path(path)
        self.synchronous = synchronous
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"SpendLedger({str(self.path)!r})"

    def open(self) -> dict[str, float]:
        """Open the file, count the reservations a stopped server left open as spent; every key's spend."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.path, timeout=1.0, check_same_thread=False, isolation_level=None
            )
            connection.execute("PRAGMA locking_mode=EXCLUSIVE")  # one server per ledger
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
            with _transaction(connection):
                for statement in _SCHEMA:
                    connection.execute(statement)
                left_open = connection.execute(
                    "SELECT key, sum(amount_usd) FROM reservations GROUP BY key"
                ).fetchall()
                for key, amount in left_open:
                    _add_spend(connection, key, amount)
                    log.warning(
                        "routoo: key %r had $%.6g reserved when the server stopped; counted as spent",
                        key,
                        amount,
                    )
                connection.execute("DELETE FROM reservations")
                spent = dict(connection.execute("SELECT key, spent_usd FROM spend").fetchall())
        except sqlite3.Error as error:
            raise ConfigError(
                f"cannot open the spend ledger {self.path}: {error} (is another server using it?)"
            ) from None
        self._connection = connection
        return spent

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def spent(self) -> dict[str, float]:
        """Every key's settled spend as the file holds it (reservations not included)."""
        return dict(self._run("SELECT key, spent_usd FROM spend", ()).fetchall())

    def reserved(self, key: str, reservation: Reservation) -> None:
        self._run(
            "INSERT INTO reservations (key, id, amount_usd) VALUES (?, ?, ?)",
            (key, reservation.id, reservation.estimate_usd),
        )

    def settled(self, key: str, reservation: Reservation, cost_usd: float) -> None:
        with self._lock:
            connection = self._opened()
            with _transaction(connection):
                connection.execute("DELETE FROM reservations WHERE key = ? AND id = ?", (key, reservation.id))
                _add_spend(connection, key, cost_usd)

    def released(self, key: str, reservation: Reservation) -> None:
        self._run("DELETE FROM reservations WHERE key = ? AND id = ?", (key, reservation.id))

    def _run(self, sql: str, values: tuple[object, ...]) -> sqlite3.Cursor:
        with self._lock:
            return self._opened().execute(sql, values)

    def _opened(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ConfigError(f"the spend ledger {self.path} is not open")
        return self._connection


@contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error) on an autocommit connection."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _add_spend(connection: sqlite3.Connection, key: str, amount: float) -> None:
    connection.execute(
        "INSERT INTO spend (key, spent_usd) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET spent_usd = spent_usd + excluded.spent_usd",
        (key, amount),
    )


class DurableBudget(Budget):
    """A key's ``Budget`` that writes every reservation and settlement through to the ledger.

    ``spent_usd`` is what the ledger holds for the key when the server starts.
    """

    def __init__(
        self,
        ledger: SpendLedger,
        key: str,
        limit_usd: float,
        mode: BudgetMode = "hard",
        spent_usd: float = 0.0,
    ) -> None:
        super().__init__(limit_usd, mode, name=f"key {key!r}", spent_usd=spent_usd)
        self.ledger = ledger
        self.key = key

    def reserve(self, estimate_usd: float, why: str = "") -> Reservation:
        reservation = super().reserve(estimate_usd, why)
        try:
            self.ledger.reserved(self.key, reservation)
        except BaseException:  # not on disk: the call must not go out
            super().release(reservation)
            raise
        return reservation

    def settle(self, reservation: Reservation, actual_usd: float, record: SpendRecord) -> None:
        super().settle(reservation, actual_usd, record)
        self._written(self.ledger.settled, reservation, actual_usd)

    def release(self, reservation: Reservation) -> None:
        super().release(reservation)
        self._written(self.ledger.released, reservation)

    def _written(self, write: Callable[..., None], reservation: Reservation, *amount: float) -> None:
        try:
            write(self.key, reservation, *amount)
        except sqlite3.Error as error:  # the reservation row stays: the next start counts it as spent
            log.error(
                "routoo: the spend ledger %s missed a write for key %r: %s", self.ledger.path, self.key, error
            )


@dataclass(frozen=True)
class ApiKey:
    """A key the server knows: its settings (secret hidden) and its budget."""

    settings: KeySettings
    budget: DurableBudget

    @property
    def name(self) -> str:
        return self.settings.name

    def may_call(self, model: str) -> bool:
        """Whether this key may call the preset or pool model ``model``."""
        return self.settings.models is None or model in self.settings.models


class KeyRing:
    """The server's keys, each with its durable budget; without keys one anonymous key takes every call."""

    def __init__(self, keys: Sequence[KeySettings], ledger: SpendLedger) -> None:
        self.ledger = ledger
        spent = ledger.open()
        self.open = not keys
        given = keys or [KeySettings(name=ANONYMOUS, secret="not-a-secret-anyone-may-call")]
        self.keys = [
            ApiKey(settings, _budget(ledger, settings, spent.get(settings.name, 0.0))) for settings in given
        ]
        self._by_digest = {_digest(key.settings.secret.get_secret_value()): key for key in self.keys}

    def authenticate(self, secret: str | None) -> ApiKey | None:
        """The key whose secret is ``secret`` (the bearer token), or None; any secret when open."""
        if self.open:
            return self.keys[0]
        if not secret:
            return None
        return self._by_digest.get(_digest(secret))  # a digest lookup: no secret compared char by char

    def close(self) -> None:
        self.ledger.close()


def _budget(ledger: SpendLedger, settings: KeySettings, spent: float) -> DurableBudget:
    if settings.budget_usd is None:
        return DurableBudget(ledger, settings.name, UNLIMITED_USD, "soft", spent)
    return DurableBudget(ledger, settings.name, settings.budget_usd, settings.budget_mode, spent)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()
