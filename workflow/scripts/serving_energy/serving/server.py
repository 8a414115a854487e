"""The REST API that serves one model in one engine: FastAPI, run by uvicorn.

The model is loaded once, at start-up, before the server accepts a connection; requests never
move it or rebuild a session. Run as ``python -m serving_energy.serving.server --help``.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from serving_energy import __version__
from serving_energy.core.io import write_atomic_json
from serving_energy.core.lifecycle import die_with_parent

logger = logging.getLogger("serving_energy.serving.server")

MAX_PROMPT_CHARS = 20_000
MAX_NEW_TOKENS_LIMIT = 4096
# A longest prompt is at most 80 kB of UTF-8; anything far beyond is refused before it is read
# whole, parsed or echoed back.
MAX_BODY_BYTES = 256 * 1024
PREVIEW_CHARS = 60


class _BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """ASGI middleware: 413 for a body over ``max_bytes``, declared or streamed; nothing echoed."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES):
        self.app = app
        self.max_bytes = max_bytes

    def _refusal(self) -> JSONResponse:
        return JSONResponse(
            status_code=413,
            content={"detail": f"request body over {self.max_bytes} bytes; send a shorter prompt"},
        )

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refusal()(scope, receive, send)
        received = 0
        started = False

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._refusal()(scope, receive, send)


def concise_validation_errors(errors) -> list[dict]:
    """Pydantic's errors without the request echoed back: the field, the problem, and a short
    preview of the offending value (never the whole body)."""
    concise = []
    for error in errors:
        entry = {
            "loc": list(error.get("loc", ())),
            "msg": error.get("msg"),
            "type": error.get("type"),
        }
        field_level = len(entry["loc"]) >= 2 and entry["type"] != "missing"
        if field_level and "input" in error:
            text = repr(error["input"])
            entry["value"] = text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"
        concise.append(entry)
    return concise


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: StrictStr = Field(
        min_length=1, max_length=MAX_PROMPT_CHARS, description="Text to continue."
    )
    max_new_tokens: StrictInt | None = Field(
        default=None,
        ge=1,
        le=MAX_NEW_TOKENS_LIMIT,
        description="Exact number of new tokens (greedy, no early stop). Overrides max_length.",
    )
    max_length: StrictInt | None = Field(
        default=None,
        ge=2,
        le=MAX_NEW_TOKENS_LIMIT,
        description="Total length, prompt + new tokens; the server's default applies if unset.",
    )


class GenerateResponse(BaseModel):
    text: str = Field(description="The generated continuation (new tokens only).")
    new_tokens: int
    prompt_tokens: int
    latency_s: float = Field(description="Server-side time of this generation, in seconds.")


class Health(BaseModel):
    ready: bool
    model: str
    engine: str
    provider: str
    device: str | None
    threads: int | None
    load_duration_s: float | None
    versions: dict[str, str]
    engine_info: dict


class GenerationDefaults(BaseModel):
    max_length: int = 128
    max_new_tokens: int | None = None
    max_positions: int | None = None


def new_tokens_for(
    prompt_tokens: int, request: GenerateRequest, defaults: GenerationDefaults
) -> int:
    """How many tokens to generate: explicit count, else the total length minus the prompt."""
    if request.max_new_tokens is not None:
        count = request.max_new_tokens
    elif request.max_length is not None:
        count = request.max_length - prompt_tokens
    elif defaults.max_new_tokens is not None:
        count = defaults.max_new_tokens
    else:
        count = defaults.max_length - prompt_tokens
    if count < 1:
        raise HTTPException(
            status_code=422,
            detail=f"prompt has {prompt_tokens} tokens, which leaves no room under the total "
            f"length {request.max_length or defaults.max_length}; shorten the prompt or set "
            "max_new_tokens",
        )
    if defaults.max_positions is not None and prompt_tokens + count > defaults.max_positions:
        raise HTTPException(
            status_code=422,
            detail=f"prompt ({prompt_tokens} tokens) + {count} new tokens exceeds the model's "
            f"{defaults.max_positions} positions",
        )
    return count


def create_app(
    load_engine: Callable[[], object],
    *,
    model_name: str,
    engine_name: str,
    provider: str,
    defaults: GenerationDefaults,
) -> FastAPI:
    """An app that loads its engine once at start-up, then serves /health and /generate."""
    state: dict = {"engine": None, "load_duration_s": None}
    generate_lock = threading.Lock()
    # An engine's info() is not promised to be thread-safe (llama.cpp's system info was not),
    # and a client polling /health during a slow load leaves requests that arrive all at once.
    info_lock = threading.Lock()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        started = time.perf_counter()
        state["engine"] = load_engine()
        state["load_duration_s"] = time.perf_counter() - started
        logger.info("model loaded in %.2f s", state["load_duration_s"])
        yield
        state["engine"] = None

    app = FastAPI(
        title="serving-energy model server",
        version=__version__,
        description="Serves one code language model in one runtime engine, greedily.",
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            status_code=422, content={"detail": concise_validation_errors(error.errors())}
        )

    @app.get("/health", response_model=Health)
    def health() -> Health:
        engine = state["engine"]
        with info_lock:
            info = asdict(engine.info()) if engine is not None else {}
        return Health(
            ready=engine is not None,
            model=model_name,
            engine=engine_name,
            provider=provider,
            device=info.get("device"),
            threads=info.get("threads"),
            load_duration_s=state["load_duration_s"],
            versions={"serving_energy": __version__, **info.get("library_versions", {})},
            engine_info=json.loads(json.dumps(info, default=str)),
        )

    @app.post(
        "/generate",
        response_model=GenerateResponse,
        responses={
            400: {
                "description": "Body that cannot be read as text (FastAPI: error parsing the body)"
            },
            413: {"description": f"Request body over {MAX_BODY_BYTES} bytes"},
            422: {"description": "Invalid request (each problem names its field)"},
            500: {"description": "Engine error"},
        },
    )
    def generate(request: GenerateRequest) -> GenerateResponse:
        engine = state["engine"]
        if engine is None:
            raise HTTPException(status_code=503, detail="model not loaded yet")
        try:
            prompt_tokens = engine.prompt_token_count(request.prompt)
        except Exception as error:  # an engine failure must reach the client, not kill the server
            logger.exception("tokenizing failed")
            raise HTTPException(status_code=500, detail=f"engine error: {error}") from error
        count = new_tokens_for(prompt_tokens, request, defaults)
        started = time.perf_counter()
        try:
            with generate_lock:
                generation = engine.generate(request.prompt, count)
        except Exception as error:
            logger.exception("generation failed")
            raise HTTPException(status_code=500, detail=f"engine error: {error}") from error
        return GenerateResponse(
            text=generation.text,
            new_tokens=generation.new_tokens,
            prompt_tokens=generation.prompt_tokens,
            latency_s=time.perf_counter() - started,
        )

    return app


def max_positions_of(model_dir: Path) -> int | None:
    """The longest sequence the model accepts, from its config (None when it does not say)."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        return None
    config = json.loads(path.read_text())
    for key in ("max_position_embeddings", "n_positions", "seq_length"):
        if isinstance(config.get(key), int):
            return config[key]
    return None


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind before serving, so a busy port fails here with a clear message and port 0 is free."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted connections only when
    # sock.proto == IPPROTO_TCP. With proto 0, Nagle's algorithm meets the client's delayed ACK
    # and every response waits ~40 ms on loopback (uvicorn writes headers and body separately).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise SystemExit(
            f"cannot bind {host}:{port}: {error} (is another server using it?)"
        ) from error
    sock.listen(128)
    return sock


def _options_mapping(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {error}") from error
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--artefact-dir", type=Path, default=None)
    parser.add_argument("--engine", required=True)
    parser.add_argument("--provider", required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", type=Path, help="where to write the bound port")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument(
        "--engine-options",
        type=_options_mapping,
        default={},
        help="the engine's own settings as one JSON object (the config's engines.<engine>, e.g. "
        '\'{"inference_precision": "f32"}\' for openvino); checked by the engine',
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    from serving_energy.engines import load_engine

    # A native crash in an engine (an abort inside llama.cpp, a segfault in a runtime) then
    # leaves every thread's Python stack in the server's log, which the run's failure quotes.
    faulthandler.enable(all_threads=True)
    die_with_parent()
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    sock = bind_socket(args.host, args.port)
    port = sock.getsockname()[1]
    if args.port_file:
        write_atomic_json(args.port_file, {"host": args.host, "port": port})

    def load():
        logger.info("loading %s in %s on %s", args.model_name, args.engine, args.provider)
        try:
            engine = load_engine(
                args.engine,
                args.provider,
                args.model_dir,
                args.artefact_dir,
                args.threads,
                args.engine_options,
            )
            # Inside the load, outside every measured window: a request of the study's length
            # (a one-token prompt and its new tokens; the whole length without a fixed count).
            engine.prepare_for(
                1 + args.max_new_tokens if args.max_new_tokens is not None else args.max_length
            )
            return engine
        except Exception as error:
            raise RuntimeError(
                f"could not load model {args.model_name} in engine {args.engine} on "
                f"{args.provider}: {error}"
            ) from error

    app = create_app(
        load,
        model_name=args.model_name,
        engine_name=args.engine,
        provider=args.provider,
        defaults=GenerationDefaults(
            max_length=args.max_length,
            max_new_tokens=args.max_new_tokens,
            max_positions=max_positions_of(args.model_dir),
        ),
    )
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(1)


if __name__ == "__main__":
    main()
