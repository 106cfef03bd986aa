"""The peer in the benchmark: wikiteam3's dump generator, in a virtual environment of its own.

    wikiteam3dumpgenerator --xml --xmlrevisions --api URL --index URL --force --path DIR

walks list=allrevisions with content (50 revisions a request, or --api_chunksize when
logged in) and writes one export-format XML file. Options that matter here:

- ``--force`` skips its lookup of earlier dumps at the Internet Archive, the only
  other host it would contact for this job (no ``--images``, no ``--upload``). The
  environment also points every proxy variable at a closed loopback port, with
  ``no_proxy`` for 127.0.0.1 only, so any request to another host fails instead of
  leaving the machine; ``blocked`` counts such failures in its output.
- ``--delay`` defaults to 1.5 s per request; the benchmark passes its own value (0 by
  default, as the harvester also runs without rate ceilings) and records it.
- ``--path`` must not exist yet, or it asks on standard input whether to resume; it
  runs with standard input closed, so a question fails rather than waits.
- Logging in: its clientlogin cannot use bot passwords and reports success anyway
  (it then stays anonymous), so the logged-in run uses the account's own password.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crawl import directory_bytes, process_group_cpu_s, run_measured, server_requests

PROGRAM = "wikiteam3dumpgenerator"
DEFAULT_DELAY = 1.5  # its --delay default (wikiteam3 4.4), for the record
# Closed port: a request to anywhere but loopback fails at once.
DEAD_PROXY = "http://127.0.0.1:9"
BLOCKED = re.compile(r"ProxyError|Unable to connect to proxy|127\.0\.0\.1:9\b")


@dataclass
class Peer:
    executable: Path
    version: str


def install(venv: Path, package: str = "wikiteam3") -> Peer:
    """Create ``venv`` and pip-install ``package`` into it, unless already there."""
    python = venv / "bin" / "python"
    executable = venv / "bin" / PROGRAM
    if not executable.exists():
        print(f"installing {package} into {venv} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        done = subprocess.run([str(python), "-m", "pip", "install", "-q", package],
                              capture_output=True, text=True)
        if done.returncode != 0 or not executable.exists():
            raise SystemExit(f"pip install {package} failed: {done.stderr.strip()[-1500:]}")
    version = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('wikiteam3'))"],
        capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    return Peer(executable, version)


def loopback_only_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        env[name] = env[name.upper()] = DEAD_PROXY
    env["no_proxy"] = env["NO_PROXY"] = "127.0.0.1,localhost"
    return env


def count_revisions(out: Path) -> int:
    """``<revision>`` elements in the XML it wrote (streamed, line by line)."""
    total = 0
    for xml in out.glob("*-history.xml"):
        with xml.open(encoding="utf-8", errors="replace") as fh:
            total += sum(line.count("<revision>") for line in fh)
    return total


def run(
    peer: Peer, api_url: str, index_url: str, out: Path, log: Path, *, delay: float,
    login: tuple[str, str] | None = None, chunk: int = 50, timeout: float = 7200,
    server_pgid: int | None = None,
) -> dict[str, Any]:
    """One dump into ``out`` (must not exist): time, CPU, RSS, requests, revisions, size;
    and the CPU the server's process group (``server_pgid``) spent meanwhile."""
    command = [str(peer.executable), "--api", api_url, "--index", index_url, "--xml",
               "--xmlrevisions", "--force", "--delay", str(delay), "--path", str(out),
               "--api_chunksize", str(chunk)]  # fmt: skip
    if login:
        command += ["--user", login[0], "--pass", login[1]]
    transcript = out.with_name(out.name + ".out")
    before = server_requests(log)
    server_before = process_group_cpu_s(server_pgid)
    result = run_measured(command, loopback_only_env(), cwd=out.parent, output=transcript,
                          timeout=timeout)
    requests = server_requests(log) - before
    server_cpu = process_group_cpu_s(server_pgid) - server_before
    text = transcript.read_text(encoding="utf-8", errors="replace")
    if result.code != 0:
        raise SystemExit(f"{PROGRAM} failed (exit {result.code}): {text.strip()[-2000:]}")
    return {
        "wall_s": result.wall_s, "cpu_s": result.cpu_s, "peak_rss_mb": result.peak_rss_mb,
        "requests": requests, "server_cpu_s": server_cpu, "bytes": directory_bytes(out),
        "revisions_written": count_revisions(out), "delay_s": delay,
        "blocked": len(BLOCKED.findall(text)),
        # "-- Login OK --" shows even when the login failed; this line only on success
        "logged_in": "login: Success!" in text,
    }
