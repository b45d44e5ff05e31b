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


def test_compile_cache_defaults_to_the_user_cache_and_yields_to_the_user(monkeypatch, tmp_path):
    """On by default under $XDG_CACHE_HOME/jaxbert/xla; JAXBERT_COMPILE_CACHE moves it or
    (=0) turns it off; a JAX_COMPILATION_CACHE_DIR of the user's wins untouched."""
    import jax

    before = jax.config.jax_compilation_cache_dir
    try:
        monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "theirs"))
        assert platforms.compile_cache() == str(tmp_path / "theirs")
        assert jax.config.jax_compilation_cache_dir == before  # jax reads the variable itself
        monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        monkeypatch.delenv("JAXBERT_COMPILE_CACHE", raising=False)
        assert platforms.compile_cache() == str(tmp_path / "jaxbert" / "xla")
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "jaxbert" / "xla")
        monkeypatch.setenv("JAXBERT_COMPILE_CACHE", str(tmp_path / "mine"))
        assert platforms.compile_cache() == str(tmp_path / "mine")
        monkeypatch.setenv("JAXBERT_COMPILE_CACHE", "0")
        assert platforms.compile_cache() is None
    finally:
        jax.config.update("jax_compilation_cache_dir", before)
