"""The README's promises: its library example runs as printed, and CI runs its test command."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end >= 0 else None]


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_library_example_runs_and_prints_what_it_says() -> None:
    (block,) = _python_blocks(_section("The library"))
    out = io.StringIO()
    namespace: dict = {}
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), namespace)
    printed = out.getvalue().splitlines()
    # The comments in the example state what it prints; hold them to it.
    for line in block.splitlines():
        if "print(" in line and "# (" in line:
            assert line.split("# ", 1)[1].strip() in printed
    assert printed[0].startswith("S = 0.022588, Z = 151, SQNR = ")
    result, exact = namespace["result"], namespace["exact"]
    assert result.table is not None
    # One row per candidate of the default search (llama.cpp-style code-unit grid, then the
    # polish); each of the 8 blocks keeps its own best row.
    assert len(result.table) > 2
    assert int(result.table["n_best"].sum()) == 8
    # The exact optimum is the yardstick: the symmetric grid search never beats it.
    searched = (
        namespace["ql"]
        .Quantizer(n_bits=4, block_size=32)
        .search(namespace["weights"], w=namespace["importance"])
    )
    assert (exact.error <= searched.error * (1 + 1e-12)).all()


def test_ci_runs_the_readme_test_command() -> None:
    blocks = re.findall(
        r"<!-- test-command -->\n```bash\n(.*?)\n```\n<!-- /test-command -->", README
    )
    assert len(blocks) == 1, "README must hold exactly one marked test command"
    # .ci/run extracts the command with sed; run that very extraction and compare.
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    extraction = re.search(r"cmd=\$\((.*?)\)\n", script, flags=re.S)
    assert extraction, ".ci/run no longer reads the command from README.md"
    got = subprocess.run(
        ["bash", "-c", extraction.group(1)], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert got == blocks[0]
    assert 'exec bash -c "$cmd"' in script
