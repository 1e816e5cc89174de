"""The shared pieces one operator instance wires together and hands around."""

from __future__ import annotations

from dataclasses import dataclass

from minop.cache import Cache
from minop.events import Recorder
from minop.kube import Kube
from minop.metrics import Metrics


@dataclass
class Runtime:
    kube: Kube
    cache: Cache
    recorder: Recorder
    metrics: Metrics
