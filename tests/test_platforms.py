"""platforms.py: the process-wide settings `jaxbert` makes before jax starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from jaxbert import platforms

PROBE = "from jaxbert import platforms; print(platforms.cpu_malloc())"  # a fresh process


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt: Linux only")
def test_cpu_malloc_applies_on_cpu_hosts_unless_the_user_chose(monkeypatch):
    """mallopt is applied on a CPU-only glibc host, and left alone when the user set
    JAXBERT_CPU_MALLOC=0 or a MALLOC_* variable of their own."""
    for var in [k for k in os.environ if k.startswith("MALLOC_")]:
        monkeypatch.delenv(var)
    monkeypatch.delenv("JAXBERT_CPU_MALLOC", raising=False)
    monkeypatch.setattr(platforms, "tpu_attached", lambda: False)
    monkeypatch.setattr(platforms.glob, "glob", lambda pattern: [])
    monkeypatch.setenv("JAXBERT_CPU_MALLOC", "0")
    assert platforms.cpu_malloc() is False
    monkeypatch.delenv("JAXBERT_CPU_MALLOC")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert platforms.cpu_malloc() is False
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_cpu_malloc_stays_off_where_an_accelerator_is_attached(monkeypatch):
    monkeypatch.delenv("JAXBERT_CPU_MALLOC", raising=False)
    monkeypatch.setattr(platforms, "tpu_attached", lambda: True)
    assert platforms.cpu_malloc() is False
