"""One benchmark run: where it works, how big it is (`--quick`), and the Kafka broker it may
share between benchmarks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.kafka import LazyBroker

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / ".cache" / "bench"


@dataclass
class Config:
    quick: bool
    workdir: Path
    broker: LazyBroker = field(init=False)

    def __post_init__(self) -> None:
        self.broker = LazyBroker(self.workdir / "kafka")

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def prestart_kafka(self) -> None:
        """Start the broker's JVM in the background (while a benchmark that is bound by a rate
        limit, not by CPU, runs) so the Kafka benchmarks do not wait for it."""
        self.broker.prestart()

    def kafka(self) -> Any:
        """The run's broker (tests.support.kafka_broker.KafkaBroker), started on first use."""
        return self.broker.get()

    def close(self) -> None:
        self.broker.close()
