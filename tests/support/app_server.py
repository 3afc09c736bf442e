"""The app served in this process by uvicorn on a thread: real HTTP and WebSockets, for tests
that must also reach into the process (a clock they move, the app's own objects)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import uvicorn
from fastapi import FastAPI

from tests.support.processes import free_ports
from tests.support.waiting import wait_until


@dataclass
class AppServer:
    app: FastAPI
    port: int = field(default_factory=lambda: free_ports(1)[0])
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def container(self) -> Any:
        return self.app.state.container

    def start(self) -> AppServer:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            lifespan="on",
            log_config=None,
            ws_per_message_deflate=False,
        )
        self._server = server = uvicorn.Server(config)
        # Not the main thread: uvicorn installs no signal handlers there.
        self._thread = threading.Thread(target=server.run, name=f"app-{self.port}", daemon=True)
        self._thread.start()
        wait_until(
            lambda: server.started or not self._thread_alive(),
            20,
            every=0.02,
            what=f"the app to start on port {self.port} (or its thread to end)",
        )
        if not server.started:
            raise RuntimeError(f"the app did not start on port {self.port}")
        return self

    def _thread_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(20)
        self._server = self._thread = None

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.stop()
