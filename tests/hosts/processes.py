"""Real processes as the host tests look at them."""

from __future__ import annotations

import asyncio
from pathlib import Path


def alive(pid: int) -> bool:
    """A zombie (exited, waiting to be reaped) does not count."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


async def gone(pid: int, within: float = 10.0) -> bool:
    """True once /proc shows no live process `pid` (checked for at most `within` s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if not alive(pid):
            return True
        await asyncio.sleep(0.1)
    return False
