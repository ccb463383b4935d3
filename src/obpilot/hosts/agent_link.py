"""obpilot's end of a host's agent (`obpilot.hosts.agent`): starts it through the host's
executor when first needed, sends it requests with ids, matches its answers to them
(many in flight at once), and hands its exit events to listeners.

An agent that has ended (killed, its connection dropped) fails every call in flight with
a `HostUnreachable` that says so, and the next call starts a new one; a step that failed
that way is simply retried. An agent that answers with another version than the text
obpilot sent is closed, never used.

What a host says enters obpilot here, so it is made printable here (`formats.printable`):
every text of an answer, an action's error, the agent's stderr. A host's OS name, a
process's command line or a log's end is then stored, logged and shown as what it reads,
never as a forged log line or a terminal escape."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Collection, Sequence
from functools import cache
from importlib import resources
from typing import Any, cast

from obpilot.errors import HostCommandTimeout, HostError, HostUnreachable
from obpilot.formats import printable, printable_lines
from obpilot.hosts.agent import BOOTSTRAP, agent_version
from obpilot.hosts.executor import ExitListener, HostExecutor, HostPipe, ProcessExit
from obpilot.hosts.protocol import Action, AgentHello, AnswerT, RequestT
from obpilot.logging import get_logger

log = get_logger(__name__)

#: Seconds an agent has to say hello once its command runs (interpreter start, SSH).
HELLO_TIMEOUT = 20.0


@cache
def agent_source() -> bytes:
    return resources.files("obpilot.hosts").joinpath("agent.py").read_bytes()


class AgentLink:
    """One host's agent, as its executor's `agent`."""

    def __init__(self, executor: HostExecutor, source: bytes | None = None) -> None:
        self._executor = executor
        #: The text sent to start an agent; an agent of another version is replaced.
        self.source = source if source is not None else agent_source()
        self._running: _RunningAgent | None = None
        self._starting = asyncio.Lock()
        self._listeners: list[ExitListener] = []

    @property
    def label(self) -> str:
        return self._executor.label

    @property
    def pid(self) -> int | None:
        """The running agent's pid on its host, if one runs."""
        running = self._running
        return running.hello["pid"] if running is not None and running.alive else None

    def on_exit(self, listener: ExitListener) -> None:
        self._listeners.append(listener)

    async def call(
        self, action: Action[RequestT, AnswerT], request: RequestT, *, step: str, time_limit: float
    ) -> AnswerT:
        agent = await self._agent(step)
        answer = await agent.call(action.name, request, step, time_limit)
        return cast(AnswerT, printable_answer(answer, action.lines))

    async def _agent(self, step: str) -> _RunningAgent:
        async with self._starting:
            running = self._running
            wanted = agent_version(self.source)
            if running is not None and running.alive and running.hello["agent"] == wanted:
                return running
            if running is not None:
                await running.close()
            self._running = await _RunningAgent.start(
                self._executor, self.source, step, self._report_exit
            )
            return self._running

    def _report_exit(self, exited: ProcessExit) -> None:
        for listener in self._listeners:
            try:
                listener(exited)
            except Exception:  # one listener's bug must not silence the others
                log.exception("an exit listener failed", host=self.label, pid=exited.pid)

    async def close(self) -> None:
        running, self._running = self._running, None
        if running is not None:
            await running.close()


class _RunningAgent:
    """One started agent process and the calls waiting for its answers."""

    def __init__(self, label: str, pipe: HostPipe, hello: AgentHello, on_exit: ExitListener):
        self.label = label
        self.pipe = pipe
        self.hello = hello
        self._on_exit = on_exit
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ended: str | None = None
        self._reader = asyncio.create_task(self._read(), name=f"agent {label}")

    @classmethod
    async def start(
        cls, executor: HostExecutor, source: bytes, step: str, on_exit: ExitListener
    ) -> _RunningAgent:
        argv: Sequence[str] = [executor.python, "-u", "-c", BOOTSTRAP]
        pipe = await executor.open_pipe(argv, step=step)
        line = b""
        try:
            await pipe.send(f"{len(source)}\n".encode() + source)
            line = await asyncio.wait_for(pipe.receive_line(), HELLO_TIMEOUT)
            hello = _hello(line)
        except (TimeoutError, ValueError, OSError, ConnectionError) as error:
            await pipe.close()
            raise HostUnreachable(
                host=executor.label,
                step=step,
                detail=f"the agent ({executor.python}) did not start: {_why(error, line)}; "
                f"stderr: {pipe.error_output() or '(none)'}",
            ) from None
        except BaseException:
            await pipe.close()
            raise
        if hello["agent"] != agent_version(source):
            await pipe.close()
            raise HostError(
                host=executor.label,
                step=step,
                detail=f"the agent answered as version {hello['agent']}, not "
                f"{agent_version(source)}; it was closed",
            )
        log.info("host agent started", host=executor.label, pid=hello["pid"])
        return cls(executor.label, pipe, hello, on_exit)

    @property
    def alive(self) -> bool:
        return self._ended is None

    async def call(self, action: str, request: object, step: str, time_limit: float) -> object:
        if self._ended is not None:
            raise HostUnreachable(host=self.label, step=step, detail=self._ended)
        request_id = next(self._ids)
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = waiter
        message = {"id": request_id, "action": action, **cast(dict[str, Any], request)}
        try:
            await self.pipe.send((json.dumps(message) + "\n").encode())
            reply = await asyncio.wait_for(asyncio.shield(waiter), time_limit)
        except TimeoutError:
            raise HostCommandTimeout(
                host=self.label,
                step=step,
                detail=f"the agent did not answer {action} within {time_limit:g} s",
            ) from None
        except (OSError, ConnectionError) as error:
            raise HostUnreachable(
                host=self.label, step=step, detail=f"cannot reach the agent: {error}"
            ) from None
        except _AgentEnded as ended:
            raise HostUnreachable(host=self.label, step=step, detail=str(ended)) from None
        finally:
            self._waiting.pop(request_id, None)
        if "error" in reply:
            raise HostError(host=self.label, step=step, detail=printable(str(reply["error"])))
        if "answer" not in reply:
            raise HostError(
                host=self.label, step=step, detail=f"the agent's reply to {action} has no answer"
            )
        return reply["answer"]

    async def _read(self) -> None:
        try:
            while True:
                line = await self.pipe.receive_line()
                if not line:
                    break
                self._dispatch(json.loads(line))
        except Exception as error:  # a dropped connection, or a line that is not JSON
            self._end(f"the connection to the agent broke: {_why(error, b'')}")
            return
        self._end(
            f"the agent (pid {self.hello['pid']}) ended; "
            f"stderr: {self.pipe.error_output() or '(none)'}"
        )

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "id" in message:
            waiter = self._waiting.get(message["id"])
            if waiter is not None and not waiter.done():
                waiter.set_result(message)
        elif message.get("event") == "exit":
            self._on_exit(
                ProcessExit(self.label, message["pid"], message["start_ticks"], message["home"])
            )

    def _end(self, why: str, *, expected: bool = False) -> None:
        if self._ended is not None:
            return
        self._ended = why
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(_AgentEnded(why))
        if not expected:
            log.warning("host agent ended", host=self.label, why=why)

    async def close(self) -> None:
        self._end("the agent was closed", expected=True)
        await self.pipe.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


class _AgentEnded(Exception):
    pass


def _hello(line: bytes) -> AgentHello:
    message = json.loads(line) if line.strip() else None
    if not (
        isinstance(message, dict)
        and isinstance(message.get("agent"), str)
        and isinstance(message.get("pid"), int)
    ):
        raise ValueError("no hello")
    return cast(AgentHello, message)


def printable_answer(answer: object, lines: Collection[str] = ()) -> object:
    """`answer` with each of its texts made printable, at any depth; the texts of its own
    keys named in `lines` keep their line breaks. Keys stay as they are: they are ports
    and paths that obpilot sent."""
    if isinstance(answer, str):
        return printable(answer)
    if isinstance(answer, list):
        return [printable_answer(item) for item in answer]
    if isinstance(answer, dict):
        return {
            key: printable_lines(value)
            if key in lines and isinstance(value, str)
            else printable_answer(value)
            for key, value in answer.items()
        }
    return answer


def _why(error: BaseException, line: bytes) -> str:
    if isinstance(error, TimeoutError):
        return f"no hello within {HELLO_TIMEOUT:g} s"
    if isinstance(error, ValueError):
        return f"its first line was {line[:200]!r}"
    return str(error) or type(error).__name__
