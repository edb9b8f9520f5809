"""Phases carried out by an operator-given command (`dcman agent --phase-command PHASE=COMMAND`).

The command runs through `/bin/sh` in its own process group, as an asyncio subprocess (never
blocking the loop), with the phase payload as JSON on its standard input. It reports progress
by printing lines `PROGRESS <0-100>`; it succeeds by exiting with status 0. On failure the
phase message holds the last lines of its output, which is what an operator needs to see.
Aborting the phase cancels the task, which kills the whole process group.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
from collections import deque
from collections.abc import Mapping
from typing import Any

from dcman.agent import phases
from dcman.agent.subcloud import SubcloudState

log = logging.getLogger("dcman.agent.commands")

TAIL_LINES = 20
MAX_LINE_CHARS = 500
_PROGRESS = re.compile(rb"^\s*PROGRESS\s+(\d{1,3})\s*%?\s*$")


def parse_phase_commands(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`PHASE=COMMAND` items → {phase: command}; a bad item raises ValueError naming it."""
    commands: dict[str, str] = {}
    for item in items:
        phase, sep, command = item.partition("=")
        phase = phase.strip()
        if not sep or phase not in phases.PHASES or not command.strip():
            raise ValueError(f"{item!r} is not PHASE=COMMAND with PHASE one of {', '.join(phases.PHASES)}")
        commands[phase] = command
    return commands


def start_command_phase(state: SubcloudState, phase: str, command: str, payload: dict[str, Any]) -> None:
    """Start `phase` as `command` (raises phases.PhaseBusy when one is running)."""
    run = phases.start(state, phase, payload, seconds=0.0, timed=False)
    state.phase_task = asyncio.get_running_loop().create_task(_run(state, run, phase, command, payload))


async def _run(state: SubcloudState, run: int, phase: str, command: str, payload: Mapping[str, Any]) -> None:
    process: asyncio.subprocess.Process | None = None
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    try:
        process = await asyncio.create_subprocess_shell(
            command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        feeder = asyncio.ensure_future(_feed(process, json.dumps(payload).encode() + b"\n"))
        assert process.stdout is not None
        pending = b""
        while chunk := await process.stdout.read(65536):
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            for line in lines:
                _take_line(state, run, line, tail)
        if pending:
            _take_line(state, run, pending, tail)
        code = await process.wait()
        await feeder
    except asyncio.CancelledError:
        if process is not None:
            _kill(process)
            await asyncio.shield(process.wait())
        raise
    except OSError as exc:
        if state.phase_run == run:
            phases.finish(state, False, f"{phase} failed: cannot run {command!r}: {exc}")
        return
    if state.phase_run != run:
        return
    if code == 0:
        log.info("%s: phase %s succeeded", state.name, phase)
        phases.finish(state, True, f"{phase} complete.")
    else:
        log.warning("%s: phase %s failed with exit status %s", state.name, phase, code)
        output = "\n".join(tail)
        phases.finish(state, False, f"{phase} failed (exit status {code}):\n{output}".rstrip())


async def _feed(process: asyncio.subprocess.Process, data: bytes) -> None:
    """Write the payload to the command's stdin and close it; a command that does not read
    its input is not an error."""
    assert process.stdin is not None
    try:
        process.stdin.write(data)
        await process.stdin.drain()
        process.stdin.close()
    except (BrokenPipeError, ConnectionResetError):
        pass


def _take_line(state: SubcloudState, run: int, raw: bytes, tail: deque[str]) -> None:
    match = _PROGRESS.match(raw)
    if match:
        if state.phase_run == run:
            state.phase_progress = min(100, int(match.group(1)))
        return
    text = raw.decode("utf-8", "replace").rstrip("\r")[:MAX_LINE_CHARS]
    tail.append(text)
    if state.phase_run == run and text.strip():
        state.phase_message = text  # while running, the message is the command's last line


def _kill(process: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            process.kill()
        except ProcessLookupError:
            pass
