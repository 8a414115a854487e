"""Wall power from a NETIO power socket (e.g. PowerBOX 4KF) over its JSON API.

``GET <url>`` (usually ``http://<device>/netio.json``) returns ``Outputs``: one object per socket
with ``ID``, ``Load`` (W, integer) and ``Energy`` (Wh, integer, cumulative since the user last
reset it). HTTP round trips take tens to hundreds of milliseconds, so the sampler polls this meter
on its own thread with a bounded timeout; it is never called on the request path.

Energy in Wh has a resolution of 3600 J, far too coarse for a window of minutes, so window maths
integrates ``Load`` for the wall figure and keeps the Wh counter as a cross-check.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .base import COUNTER, GAUGE, METHOD_EXTERNAL, Availability, Meter, Reading

_J_PER_WH = 3600.0


def parse_netio_json(
    document: dict[str, Any], outputs: Sequence[int]
) -> list[tuple[int, float, float]]:
    """(output id, load W, energy Wh) for each requested output; KeyError if one is missing."""
    by_id = {int(o["ID"]): o for o in document["Outputs"]}
    rows = []
    for output_id in outputs:
        if output_id not in by_id:
            raise KeyError(f"NETIO output {output_id} not in the device's Outputs {sorted(by_id)}")
        out = by_id[output_id]
        load = out.get("Load")
        energy = out.get("Energy")
        if load is None:
            raise KeyError(f"NETIO output {output_id} does not meter power (no Load field)")
        rows.append((output_id, float(load), float(energy) if energy is not None else float("nan")))
    return rows


class NetioMeter(Meter):
    """Per-output wall power (``Load``) and energy counter (``Energy``) of a NETIO device."""

    name = "netio"
    method = METHOD_EXTERNAL
    measures = ("wall_power", "wall_energy")
    update_period_s = 1.0  # NETIO refreshes its measurements about once a second
    own_thread = True

    def __init__(
        self,
        url: str,
        outputs: Sequence[int] = (1,),
        timeout_s: float = 1.0,
        username: str | None = None,
        password: str | None = None,
        poll_interval_s: float = 1.0,
        session: Any = None,
    ) -> None:
        self.url = url
        self.outputs = tuple(int(o) for o in outputs)
        self.timeout_s = timeout_s
        self.poll_interval_s = poll_interval_s
        self._auth = (username, password) if username is not None else None
        self._session = session

    def _get(self) -> dict[str, Any]:
        if self._session is None:
            import requests

            self._session = requests.Session()
        response = self._session.get(self.url, timeout=self.timeout_s, auth=self._auth)
        response.raise_for_status()
        return response.json()

    def availability(self) -> Availability:
        try:
            parse_netio_json(self._get(), self.outputs)
        except Exception as exc:  # noqa: BLE001 - network, HTTP, JSON and shape errors alike
            return Availability.no(
                f"NETIO at {self.url} did not answer within {self.timeout_s} s or answered "
                f"without outputs {list(self.outputs)}: {type(exc).__name__}: {exc}"
            )
        return Availability.yes()

    def read(self, t_s: float) -> list[Reading]:
        readings = []
        for output_id, load_w, energy_wh in parse_netio_json(self._get(), self.outputs):
            sensor = f"netio {self.url} output {output_id}"
            readings.append(
                Reading(t_s, self.name, "wall_power", load_w, "W", GAUGE, METHOD_EXTERNAL, sensor)
            )
            if not math.isnan(energy_wh):
                readings.append(
                    Reading(
                        t_s,
                        self.name,
                        "wall_energy",
                        energy_wh * _J_PER_WH,
                        "J",
                        COUNTER,
                        METHOD_EXTERNAL,
                        sensor,
                    )
                )
        return readings

    def stop(self) -> None:
        if self._session is not None and hasattr(self._session, "close"):
            self._session.close()
