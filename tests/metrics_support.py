"""Reading a Prometheus /metrics page in tests: every sample by name and labels."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(url: str, **kw: object) -> Samples:
    """Every sample at `url` (a GET that must answer 200), keyed by name and sorted labels."""
    response = httpx.get(url, timeout=5, **kw)  # type: ignore[arg-type]
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
