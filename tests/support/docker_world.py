"""Load a :class:`~huledu_forensics.world.World`'s containers into a real Docker engine.

Each container of the world becomes a container with HuleEdu's exact name (optionally prefixed) on
``network_mode="none"``, running a tiny busybox image. Its stdout and stderr lines (without the
Docker stamp, which Docker adds itself) are copied in with ``put_archive`` and printed by a shell
script in the world's order, to the right stream, then the container does what the world's
:class:`~huledu_forensics.world.ContainerState` says: ``running`` sleeps, ``exited`` exits with the
given code, ``created`` is never started, ``missing`` is not created. Containers without a state
print and exit 0.

Use :func:`running_world` in tests: it takes a host-wide lock (so parallel test runs in the same
checkout do not fight over the exact names), removes leftovers, starts the world, waits until Docker
has every line, and removes the containers afterwards::

    with running_world(docker_client, busybox_image, world) as containers:
        ...
"""

from __future__ import annotations

import fcntl
import heapq
import io
import tarfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from huledu_forensics import model
from huledu_forensics.sources.docker import docker_stamp_ns
from huledu_forensics.world import ContainerState, World

__all__ = [
    "LOCK_PATH",
    "WORLD_LABEL",
    "container_streams",
    "remove_world_containers",
    "running_world",
    "start_world_containers",
    "strip_stamp",
]

#: Label put on every container this module creates (cleanup only ever touches these).
WORLD_LABEL = "huledu-forensics.test-world"
#: Host-wide lock serialising worlds that use HuleEdu's exact container names.
LOCK_PATH = "/tmp/huledu-forensics-docker-world.lock"


def strip_stamp(line: str) -> str:
    """Return ``line`` without its leading Docker RFC3339Nano stamp and the space after it."""
    head, _sep, rest = line.partition(" ")
    if docker_stamp_ns(head) is not None:
        return rest
    return line


def container_streams(world: World, name: str) -> list[tuple[str, str]]:
    """Return ``[(stream, line without stamp), ...]`` of a world container, in the world's order.

    With a ``stdout`` stream given, stdout and stderr are merged by stamp. With ``combined`` (the
    corpus layout) its order is kept and every line goes to stdout, except lines also listed in a
    ``stderr`` stream.
    """
    streams = world.logs.get(name, {})
    stderr = list(streams.get("stderr", []))
    if "stdout" in streams:
        # Two streams: merge by stamp, keeping each stream's own order.
        tagged = heapq.merge(((docker_stamp_ns(l) or 0, "stdout", l) for l in streams["stdout"]),
                             ((docker_stamp_ns(l) or 0, "stderr", l) for l in stderr),
                             key=lambda t: t[0])
        return [(stream, strip_stamp(line)) for _, stream, line in tagged]
    # Combined only: keep the combined order; lines also listed under stderr go to stderr.
    remaining = Counter(stderr)
    out: list[tuple[str, str]] = []
    for line in streams.get("combined", []):
        if remaining[line] > 0:
            remaining[line] -= 1
            out.append(("stderr", strip_stamp(line)))
        else:
            out.append(("stdout", strip_stamp(line)))
    return out


def remove_world_containers(client: Any, names: list[str]) -> None:
    """Force-remove the named containers if they exist and carry :data:`WORLD_LABEL`.

    A same-named container not created by the tests is left alone (and will make the start fail
    with Docker's name conflict, which is the right outcome on a machine running real HuleEdu).
    """
    import docker.errors

    for name in names:
        try:
            c = client.containers.get(name)
        except docker.errors.NotFound:
            continue
        if WORLD_LABEL in (c.labels or {}):
            try:
                c.remove(force=True)
            except docker.errors.NotFound:
                pass


def _archive(parts: list[tuple[str, str]], final: str) -> tuple[bytes, list[str]]:
    """Build a tar with ``w/NNN.out|err`` chunks and ``w/run.sh`` printing them in order."""
    runs: list[tuple[str, list[str]]] = []
    for stream, text in parts:
        if runs and runs[-1][0] == stream:
            runs[-1][1].append(text)
        else:
            runs.append((stream, [text]))
    files: dict[str, bytes] = {}
    script = ["#!/bin/sh"]
    for i, (stream, lines) in enumerate(runs):
        fname = f"w/{i:04d}.{'out' if stream == 'stdout' else 'err'}"
        files[fname] = "".join(l + "\n" for l in lines).encode("utf-8")
        script.append(f"cat /{fname}" + (" >&2" if stream == "stderr" else ""))
    script.append(final)
    files["w/run.sh"] = ("\n".join(script) + "\n").encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        d = tarfile.TarInfo("w")
        d.type = tarfile.DIRTYPE
        d.mode = 0o755
        tar.addfile(d)
        for fname, data in files.items():
            info = tarfile.TarInfo(fname)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue(), list(files)


def _log_counts(client: Any, container_id: str) -> tuple[int, int]:
    out = client.api.logs(container_id, stdout=True, stderr=False, timestamps=True)
    err = client.api.logs(container_id, stdout=False, stderr=True, timestamps=True)
    return out.count(b"\n"), err.count(b"\n")


def start_world_containers(client: Any, image: str, world: World, *, prefix: str = "",
                           timeout: float = 60.0) -> list[Any]:
    """Create (and start, per state) one container per world container; return them.

    Containers come from ``world.logs`` and ``world.containers``. Each is named ``prefix + name``,
    labelled with :data:`WORLD_LABEL` and the compose service, runs on ``network_mode="none"``.
    Returns once Docker holds every stdout and stderr line of every started container and the
    exiting ones have exited.

    Raises:
        TimeoutError: the output was not all flushed within ``timeout`` seconds.
    """
    states: dict[str, ContainerState] = {c.name: c for c in world.containers}
    names = sorted(set(world.logs) | set(states))
    created: list[Any] = []
    expected: dict[str, tuple[int, int]] = {}
    to_exit: list[Any] = []
    for name in names:
        st = states.get(name) or ContainerState(name=name, state="exited", exit_code=0)
        if st.state == "missing":
            continue
        parts = container_streams(world, name)
        if st.state == "running":
            final = "exec sleep 86400"
        else:
            final = f"exit {int(st.exit_code or 0)}"
        compose = st.compose_service or (model.CONTAINERS[name].compose_service
                                         if name in model.CONTAINERS else name)
        c = client.containers.create(
            image, command=["/bin/sh", "/w/run.sh"], name=prefix + name, network_mode="none",
            labels={WORLD_LABEL: world.name, "com.docker.compose.service": compose},
            detach=True)
        created.append(c)
        data, _ = _archive(parts, final)
        c.put_archive("/", data)
        if st.state == "created":
            continue
        c.start()
        expected[c.id] = (sum(1 for s, _ in parts if s == "stdout"),
                          sum(1 for s, _ in parts if s == "stderr"))
        if st.state != "running":
            to_exit.append(c)
    deadline = time.monotonic() + timeout
    for c in to_exit:
        c.wait(timeout=max(1, int(deadline - time.monotonic())))
    pending = dict(expected)
    while pending:
        for cid, want in list(pending.items()):
            if _log_counts(client, cid) == want:
                del pending[cid]
        if pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Docker did not flush the logs of {len(pending)} containers "
                                   f"within {timeout:.0f}s")
            time.sleep(0.05)
    for c in created:
        c.reload()
    return created


@contextmanager
def running_world(client: Any, image: str, world: World, *, prefix: str = "",
                  timeout: float = 60.0) -> Iterator[list[Any]]:
    """Start ``world`` under a host-wide lock, yield its containers, then remove them."""
    states = {c.name for c in world.containers}
    names = [prefix + n for n in sorted(set(world.logs) | states)]
    with open(LOCK_PATH, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            remove_world_containers(client, names)
            try:
                yield start_world_containers(client, image, world, prefix=prefix, timeout=timeout)
            finally:
                remove_world_containers(client, names)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
