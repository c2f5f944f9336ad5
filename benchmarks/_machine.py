"""Where a benchmark ran: CPU, instruction sets, llama.cpp's build, how its wheel was built, the commit, the load.

A figure without these is not comparable: machines of one kind differ 2-3x (STACK-NOTES), a wheel built with
`-march=native` on an AVX-512 machine is not what a user's AVX2 machine runs, and the 2 cores are shared with other
work. Every benchmark JSON carries `machine_info()` under "machine".

The wheel's build is read from `<venv>/valuelex-llama-build.json`, written by `scripts/setup.sh` when it installs
llama-cpp-python (its CMAKE_ARGS, the parallel level, whether pip built it or took it from its cache, the seconds).
A venv set up before that file existed says so (`"wheel_build": {"recorded": false}`); llama.cpp's own system info
(which CPU features the compiled backend uses) is recorded either way.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BUILD_FILE = "valuelex-llama-build.json"  # the name scripts/setup.sh writes in the venv
FLAGS_OF_INTEREST = ("sse4_2", "avx", "avx2", "fma", "f16c", "bmi2", "avx_vnni", "avx512f", "avx512bw", "avx512vl",
                     "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")


def cpu_info() -> dict[str, Any]:
    """Model name and the instruction-set flags that decide which ggml kernels can run (Linux /proc/cpuinfo)."""
    model: str | None = None
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model is None:
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return {"model": model or platform.processor() or None, "cpus": os.cpu_count(), "flags": {f: f in flags for f in FLAGS_OF_INTEREST},
            "avx512": any(f.startswith("avx512") for f in flags)}


def llama_system_info() -> str | None:
    """llama.cpp's `llama_print_system_info()`: the features the compiled CPU backend was built with (e.g.
    `AVX2 = 1 | AVX512 = 0`), which is what a figure depends on, whatever the CPU offers."""
    try:
        import llama_cpp

        info = llama_cpp.llama_print_system_info()
        return (info.decode() if isinstance(info, bytes) else str(info)).strip()
    except Exception as err:  # noqa: BLE001 - a benchmark without llama.cpp still records the rest
        return f"unavailable: {type(err).__name__}: {err}"


def wheel_build() -> dict[str, Any]:
    """How this venv's llama-cpp-python was built, as scripts/setup.sh recorded it at install time."""
    path = Path(sys.prefix) / BUILD_FILE
    try:
        return {"recorded": True, **json.loads(path.read_text(encoding="utf-8"))}
    except (OSError, ValueError):
        return {"recorded": False, "why": f"{path} missing: this venv's llama-cpp-python was installed before "
                "scripts/setup.sh recorded its build (or by hand); see llama_system_info for what it runs"}


def git_commit() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD") or None,
                "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine_info(llama: bool = True) -> dict[str, Any]:
    """Everything above in one dict; `llama=False` for benchmarks that never load llama.cpp."""
    try:
        from importlib.metadata import version

        lcp = version("llama_cpp_python")
    except Exception:  # noqa: BLE001
        lcp = None
    info: dict[str, Any] = {"cpu": cpu_info(), "python": platform.python_version(), "platform": platform.platform(),
                            "git": git_commit(), "load_avg_start": load_avg(), "llama_cpp_python": lcp}
    if llama:
        info["llama_system_info"] = llama_system_info()
        info["wheel_build"] = wheel_build()
    return info


def finish(info: dict[str, Any]) -> dict[str, Any]:
    """Add the load average at the end of the run (the figure ran between the two)."""
    info["load_avg_end"] = load_avg()
    return info


def write_result(result: dict[str, Any], out: str | Path) -> Path:
    """Close `result["machine"]` (`finish`) and write the result as JSON to `out`, creating its folder."""
    finish(result["machine"])
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    print(json.dumps(finish(machine_info()), indent=2))
