"""The HTTP client of a run: sends the prompts one by one, in file order, and records each request."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import requests

from serving_energy.core.progress import Counter
from serving_energy.data.dataset import Prompt


@dataclass(frozen=True)
class RequestRecord:
    index: int
    task_id: str
    prompt: str
    output: str | None
    prompt_tokens: int | None
    new_tokens: int | None
    start_s: float  # on the run's monotonic clock
    end_s: float
    latency_s: float  # client-side, HTTP included
    server_latency_s: float | None
    status: str  # "ok" or "failed"
    http_status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def send_prompts(
    base_url: str,
    prompts: Sequence[Prompt],
    *,
    timeout_s: float,
    clock: Callable[[], float] = time.monotonic,
    progress: bool = True,
    session: requests.Session | None = None,
    first_index: int = 0,
) -> list[RequestRecord]:
    """POST every prompt to ``{base_url}/generate``; a failure is recorded, never raised or hidden."""
    session = session or requests.Session()
    records = []
    counter = Counter("requests", len(prompts)) if progress else None
    for offset, prompt in enumerate(prompts):
        records.append(_send_one(session, base_url, first_index + offset, prompt, timeout_s, clock))
        if counter is not None:
            counter.update(records[-1].ok)
    if counter is not None:
        counter.close()
    return records


def _send_one(session, base_url, index, prompt, timeout_s, clock) -> RequestRecord:
    start = clock()
    try:
        response = session.post(
            f"{base_url}/generate", json={"prompt": prompt.prompt}, timeout=timeout_s
        )
    except requests.RequestException as error:
        return _record(index, prompt, start, clock(), None, f"{type(error).__name__}: {error}")
    end = clock()
    if response.status_code != 200:
        return _record(index, prompt, start, end, response.status_code, _detail(response))
    try:  # a 200 that is not the API's answer is a failed request, not a crash of the run
        body = response.json()
        answer = {key: body[key] for key in ("text", "prompt_tokens", "new_tokens", "latency_s")}
    except (ValueError, KeyError, TypeError) as error:
        return _record(
            index, prompt, start, end, 200,
            f"HTTP 200 with an unreadable body ({type(error).__name__}: {error}): "
            f"{response.text[:200]}",
        )  # fmt: skip
    return _record(index, prompt, start, end, 200, None, answer)


def _record(index, prompt, start, end, http_status, error, answer=None) -> RequestRecord:
    """One request's record: ``ok`` with the server's ``answer``, or ``failed`` with ``error``."""
    answer = answer or {}
    return RequestRecord(
        index=index,
        task_id=prompt.task_id,
        prompt=prompt.prompt,
        output=answer.get("text"),
        prompt_tokens=answer.get("prompt_tokens"),
        new_tokens=answer.get("new_tokens"),
        start_s=start,
        end_s=end,
        latency_s=end - start,
        server_latency_s=answer.get("latency_s"),
        status="failed" if error is not None else "ok",
        http_status=http_status,
        error=error,
    )


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:500]}"
    detail = body.get("detail", body) if isinstance(body, dict) else body
    return f"HTTP {response.status_code}: {detail}"
