"""Cold start: the import time of each handler module next to a bare `import boto3`, each in a fresh
interpreter of the Lambda runtime's Python (3.12), interleaved, several repetitions, medians; and
the size of each function package that `sam build` made under .aws-sam/build.

The 3.12 interpreter gets boto3 and Powertools (the versions of requirements-dev.txt) and the
functions' own dependencies (functions/requirements.txt) in a small
virtualenv under .tools/bench-py312 (git-ignored), made on the first full run.
"""

from __future__ import annotations

import glob
import io
import os
import random
import re
import statistics
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from stack_definition.repository import FUNCTIONS, ROOT
from stack_definition.template import load_cached, region_names, table_names

BASELINE = "boto3"
# Every function's handler module, as the template names it ("chat.handlers.ws_send.handler").
# Not targets: what the handlers' import time is made of (full runs only).
COMPONENTS = ("aws_xray_sdk.core", "aws_lambda_powertools.logging", "aws_lambda_powertools.metrics")
VENV = ROOT / ".tools" / "bench-py312"
PACKAGE_LIMIT_BYTES = 5 * 1024 * 1024
TARGET_RATIO = 1.5


def handler_modules() -> tuple[str, ...]:
    """The template's handler modules."""
    return tuple(function.handler.rsplit(".", 1)[0] for function in load_cached().functions.values())


def lambda_environment() -> dict[str, str]:
    """What Lambda sets before the runtime imports a handler: the template's variables with its
    default parameters (so TraceAwsCalls=false), resolved as for a deployment in its first region."""
    template, region = load_cached(), region_names()[0]
    queues = {name: f"https://sqs.{region}.amazonaws.com/123456789012/{name}" for name in template.queues}
    context = template.context(region, refs=table_names(template) | queues | {"WebSocketApi": "abc123"})
    env = {"AWS_REGION": region, "AWS_DEFAULT_REGION": region}
    for function in template.functions.values():
        env.update({name: str(context.resolve(value)) for name, value in function.environment.items()})
    return env


PROBE = (
    "import sys, time\n"
    "t = time.perf_counter()\n"
    "import {module}\n"
    "sys.stdout.write(repr(time.perf_counter() - t))\n"
)


def _pinned(name: str) -> str:
    text = (ROOT / "requirements-dev.txt").read_text()
    found = re.search(rf"^{re.escape(name)}(\[[^\]]*\])?==\S+", text, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"{name} is not pinned in requirements-dev.txt")
    return found.group(0)


def python312(create: bool) -> tuple[str, str]:
    """The interpreter to measure with, and why it is that one."""
    venv_python = VENV / "bin" / "python"
    # The functions' own dependencies (functions/requirements.txt, bundled by sam build) are part
    # of what a handler imports: a venv made before they changed is made again.
    wanted = [_pinned("boto3"), _pinned("aws-lambda-powertools"), "-r", str(FUNCTIONS / "requirements.txt")]
    marker = VENV / ".installed"
    stamp = " ".join(wanted[:2]) + "\n" + (FUNCTIONS / "requirements.txt").read_text()
    if venv_python.exists() and marker.exists() and marker.read_text() == stamp:
        return str(venv_python), "python3.12 (the Lambda runtime's), .tools/bench-py312"
    candidates = sorted(glob.glob("/root/.pyenv/versions/3.12.*/bin/python3.12")) + [
        p for p in ("/usr/bin/python3.12", "/usr/local/bin/python3.12") if Path(p).exists()
    ]
    if create and candidates:
        subprocess.run([candidates[-1], "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(venv_python), "-m", "pip", "install", "--quiet", *wanted], check=True)
        marker.write_text(stamp)
        return str(venv_python), "python3.12 (the Lambda runtime's), .tools/bench-py312"
    why = "no python3.12 found" if not candidates else ".tools/bench-py312 not made yet (quick mode)"
    return sys.executable, f"python{sys.version_info.major}.{sys.version_info.minor} (fallback: {why})"


def import_seconds(python: str, module: str) -> float:
    env = {**os.environ, **lambda_environment(), "PYTHONPATH": str(FUNCTIONS), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONSTARTUP", None)
    out = subprocess.run(
        [python, "-c", PROBE.format(module=module)], env=env, capture_output=True, text=True, check=True
    ).stdout
    return float(out)


def package_sizes() -> dict[str, Any]:
    build = ROOT / ".aws-sam" / "build"
    if not build.is_dir():
        note = "no .aws-sam/build: run `bash scripts/check_template.sh --no-tests`"
        return {"present": False, "note": note}
    functions: dict[str, Any] = {}
    for folder in sorted(p for p in build.iterdir() if p.is_dir()):
        files = [p for p in folder.rglob("*") if p.is_file()]
        raw = sum(p.stat().st_size for p in files)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                archive.write(path, path.relative_to(folder))
        functions[folder.name] = {"files": len(files), "bytes": raw, "zipBytes": buffer.tell()}
    biggest = max((f["bytes"] for f in functions.values()), default=0)
    return {
        "present": True,
        "functions": functions,
        "limitBytes": PACKAGE_LIMIT_BYTES,
        "met": bool(functions) and biggest < PACKAGE_LIMIT_BYTES,
    }


def run(quick: bool = False) -> dict[str, Any]:
    python, which = python312(create=not quick)
    repeats = 2 if quick else 11
    modules = (BASELINE, *handler_modules()) if quick else (BASELINE, *handler_modules(), *COMPONENTS)
    samples: dict[str, list[float]] = {m: [] for m in modules}
    for _ in range(repeats):
        order = list(modules)
        random.shuffle(order)  # interleaved: a noisy moment hits every module alike
        for module in order:
            samples[module].append(import_seconds(python, module))
    baseline = statistics.median(samples[BASELINE])
    rows = {
        module: {
            "medianMs": round(statistics.median(values) * 1000, 2),
            "minMs": round(min(values) * 1000, 2),
            "ratioToBoto3": round(statistics.median(values) / baseline, 2),
        }
        for module, values in samples.items()
    }
    worst = max(rows[m]["ratioToBoto3"] for m in handler_modules())
    version_code = "import sys; print(sys.version.split()[0])"
    version = subprocess.run(
        [python, "-c", version_code], capture_output=True, text=True, check=True
    ).stdout.strip()
    return {
        "quick": quick,
        "python": os.path.relpath(python, ROOT) if python.startswith(str(ROOT)) else python,
        "pythonVersion": version,
        "interpreter": which,
        "repeats": repeats,
        "modules": {m: r for m, r in rows.items() if m not in COMPONENTS},
        "components": {m: r for m, r in rows.items() if m in COMPONENTS},
        "packages": package_sizes(),
        "target": {
            "text": "importing any handler costs at most 1.5x a bare `import boto3`",
            "worstRatio": worst,
            "met": worst <= TARGET_RATIO,
        },
    }


def table(result: dict[str, Any]) -> list[str]:
    lines = [
        f"interpreter: {result['interpreter']} ({result['pythonVersion']}), {result['repeats']} runs each"
    ]
    lines.append("module                         median ms  ratio to boto3")
    for module, row in (result["modules"] | result["components"]).items():
        lines.append(f"{module:<30} {row['medianMs']:>9.1f}  {row['ratioToBoto3']:>6.2f}x")
    packages = result["packages"]
    if packages["present"]:
        for name, size in packages["functions"].items():
            kib, zipped = size["bytes"] / 1024, size["zipBytes"] / 1024
            lines.append(f"package {name:<24} {kib:>8.1f} KiB ({zipped:.1f} KiB zipped)")
    else:
        lines.append(packages["note"])
    return lines
