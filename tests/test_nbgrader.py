"""The exercises, graded as a class would grade them: by nbgrader's own autograder.

Every notebook with nbgrader exercises (found by globbing ``notebooks/``, so a new notebook is
covered without editing this file) goes through ``quantlab.classroom``:

- ``generate_assignment`` must succeed, and the student edition it writes must contain neither a
  solution nor a hidden test;
- autograding the source notebook gives full marks, autograding the untouched student edition
  gives 0 on every graded cell and no error outside the exercise cells;
- every alternative answer in ``tests/exercises/<notebook>.toml`` is graded inside a submission
  (submission k replaces each exercise's answer cell by its k-th alternative, see ``_mixes``):
  a correct one must get full marks, a wrong one 0 on its exercise's check cell;
- every graded exercise has at least one correct and one wrong alternative;
- an emptied check cell is restored from the gradebook, and a deleted one scores 0;
- the teacher guide's commands are run as printed, in a temporary directory.

All submissions of all notebooks are graded in two nbgrader runs side by side (two course
directories, one per core), because starting and executing notebooks dominates the time.
"""

from __future__ import annotations

import ast
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from quantlab import classroom

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = ROOT / "tests" / "exercises"
GUIDE = ROOT / "docs" / "teachers.md"
WORKERS = 2


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def _grade_id(cell: dict) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _is_graded(cell: dict) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("grade"))


GRADED = [
    nb
    for nb in classroom.course_notebooks(ROOT / "notebooks")
    if any(_is_graded(c) for c in _cells(nb))
]


def exercises(nb: Path) -> dict[str, float]:
    """``{check grade_id: points}`` of a notebook."""
    graded = [c for c in _cells(nb) if _is_graded(c)]
    return {_grade_id(c): float(c["metadata"]["nbgrader"]["points"]) for c in graded}


def alternatives(nb: Path) -> list[dict]:
    path = EXERCISES / f"{nb.stem}.toml"
    if not path.is_file():
        return []
    return tomllib.loads(path.read_text(encoding="utf-8")).get("answer", [])


def _between(text: str, begin: str, end: str) -> list[str]:
    """The non-blank lines between the marker lines ``begin`` and ``end``."""
    found, inside = [], False
    for line in text.splitlines():
        if line.strip() == begin:
            inside = True
        elif line.strip() == end:
            inside = False
        elif inside and line.strip():
            found.append(line.strip())
    return found


# -- The exercises as data: cheap checks first -------------------------------------------------


def test_some_notebook_has_graded_exercises() -> None:
    assert GRADED, "no notebook has nbgrader exercises"


def test_every_course_notebook_is_graded() -> None:
    """Every numbered notebook but the playground ends with graded exercises (issue 9)."""
    course = sorted(
        nb for nb in (ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb") if "playground" not in nb.stem
    )
    assert len(course) >= 11
    missing = [nb.stem for nb in course if nb not in GRADED]
    assert not missing, f"course notebooks without graded exercises: {missing}"


@pytest.mark.parametrize("nb", GRADED, ids=lambda nb: nb.stem)
def test_exercise_markup_follows_the_contract(nb: Path) -> None:
    """2-5 exercises, exN-answer before exN-check, hidden tests, an assert message each."""
    cells = _cells(nb)
    checks = exercises(nb)
    assert 2 <= len(checks) <= 5, f"{nb.name}: {len(checks)} graded exercises, expected 2 to 5"
    ids = [_grade_id(c) for c in cells]
    for number in range(1, len(checks) + 1):
        answer, check = f"ex{number}-answer", f"ex{number}-check"
        assert check in checks, f"{nb.name}: graded cells must be ex1-check ... exN-check"
        assert answer in ids, f"{nb.name}: no answer cell {answer}"
        assert ids.index(answer) < ids.index(check), f"{nb.name}: {answer} after {check}"
        meta = cells[ids.index(answer)]["metadata"]["nbgrader"]
        assert meta["solution"] and not meta["grade"] and not meta["locked"], (nb.name, answer)
        assert "### BEGIN SOLUTION" in _source(cells[ids.index(answer)]), (nb.name, answer)
        check_cell = cells[ids.index(check)]
        assert check_cell["metadata"]["nbgrader"]["locked"], f"{nb.name}: {check} not locked"
        assert checks[check] > 0, f"{nb.name}: {check} has no points"
        source = _source(check_cell)
        assert "### BEGIN HIDDEN TESTS" in source, f"{nb.name}: {check} has no hidden tests"
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Assert):
                where = f"{nb.name} {check} line {node.lineno}"
                assert node.msg is not None, f"{where}: assert without a message"
                assert not (isinstance(node.test, ast.BoolOp) and isinstance(node.test.op, ast.And))
    last_check = max(ids.index(c) for c in checks)
    later = [c for c in cells[last_check + 1 :] if c["cell_type"] == "code"]
    assert not later, f"{nb.name}: code after the last exercise could use its answers"


@pytest.mark.parametrize("nb", GRADED, ids=lambda nb: nb.stem)
def test_every_exercise_has_a_correct_and_a_wrong_alternative(nb: Path) -> None:
    answers = alternatives(nb)
    cells = {_grade_id(c) for c in _cells(nb)}
    for alt in answers:
        assert set(alt) == {"cell", "kind", "why", "code"}, f"{nb.stem}.toml: fields of {alt}"
        assert alt["cell"] in cells, f"{nb.stem}.toml: no answer cell {alt['cell']!r}"
        assert alt["kind"] in ("correct", "wrong"), f"{nb.stem}.toml: kind {alt['kind']!r}"
        compile(alt["code"], f"{nb.stem}.toml:{alt['cell']}", "exec")
    for check in exercises(nb):
        answer = check.replace("-check", "-answer")
        kinds = {a["kind"] for a in answers if a["cell"] == answer}
        assert kinds == {"correct", "wrong"}, (
            f"tests/exercises/{nb.stem}.toml needs a correct and a wrong answer for {answer}"
        )


# -- Graded by nbgrader ------------------------------------------------------------------------


def _mixes(nb: Path) -> list[dict[str, dict]]:
    """Submission k: {answer cell: its k-th alternative} over all exercises.

    Each exercise's alternatives are taken wrong ones first, then correct ones, so the first
    submission has a wrong answer in every exercise and the last a correct one in the exercise
    with the most alternatives. An exercise out of alternatives keeps the notebook's solution.
    The exercises are independent, so one submission tests one alternative of each: this needs
    as many submissions as the longest list of alternatives, not one per alternative.
    """
    by_cell: dict[str, list[dict]] = {}
    for kind in ("wrong", "correct"):
        for alt in alternatives(nb):
            if alt["kind"] == kind:
                by_cell.setdefault(alt["cell"], []).append(alt)
    count = max((len(v) for v in by_cell.values()), default=0)
    return [{c: v[k] for c, v in by_cell.items() if k < len(v)} for k in range(count)]


def _write_submission(
    source: Path, target: Path, replace: dict[str, str], drop: frozenset[str] = frozenset()
) -> None:
    """Copy a notebook with the cells ``replace`` names replaced and those of ``drop`` deleted."""
    notebook = json.loads(source.read_text(encoding="utf-8"))
    notebook["cells"] = [c for c in notebook["cells"] if _grade_id(c) not in drop]
    for cell in notebook["cells"]:
        if _grade_id(cell) in replace:
            cell["source"] = replace[_grade_id(cell)]
            cell["outputs"], cell["execution_count"] = [], None
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(notebook, indent=1), encoding="utf-8")


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Release and autograde every graded notebook with all its submissions; collect scores."""
    if not GRADED:
        pytest.fail("no notebook has nbgrader exercises")
    base = tmp_path_factory.mktemp("nbgrader")
    os.environ["PYTHONPATH"] = os.pathsep.join(  # the kernels import this checkout's quantlab
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    groups = [GRADED[i::WORKERS] for i in range(WORKERS) if GRADED[i::WORKERS]]
    courses = [base / f"course{i}" for i in range(len(groups))]
    for course, group in zip(courses, groups, strict=True):
        classroom.build(course, group)
    with ThreadPoolExecutor(len(courses)) as pool:
        list(pool.map(classroom.release, courses))
    expected: dict[tuple[str, str], dict[str, float]] = {}  # (student, stem) -> check -> score
    where = {}
    for course, group in zip(courses, groups, strict=True):
        handed_in = course / "handed-in"
        for nb in group:
            where[nb.stem] = course
            full = exercises(nb)
            release = course / "release" / nb.stem / nb.name
            # mix1 (a wrong answer in every exercise) hands in every check cell emptied: nbgrader
            # restores them from the gradebook. The last mix hands in without the check cell of
            # an exercise it answers correctly: a deleted check earns nothing.
            mixes = _mixes(nb)
            submissions = {"source": (nb, {}, frozenset()), "student": (release, {}, frozenset())}
            expected[("source", nb.stem)] = dict(full)
            expected[("student", nb.stem)] = dict.fromkeys(full, 0.0)
            for k, mix in enumerate(mixes, 1):
                replace = {cell: alt["code"].strip("\n") for cell, alt in mix.items()}
                scores = dict(full)
                for cell, alt in mix.items():
                    if alt["kind"] == "wrong":
                        scores[cell.replace("-answer", "-check")] = 0.0
                drop = frozenset()
                if k == 1:
                    replace |= dict.fromkeys(full, "pass")
                if k == len(mixes):
                    right = [c for c, alt in mix.items() if alt["kind"] == "correct"]
                    drop = frozenset(c.replace("-answer", "-check") for c in right[:1])
                    scores |= dict.fromkeys(drop, 0.0)
                submissions[f"mix{k}"] = (nb, replace, drop)
                expected[(f"mix{k}", nb.stem)] = scores
            for student, (origin, replace, drop) in submissions.items():
                _write_submission(origin, handed_in / student / nb.name, replace, drop)
        classroom.collect(course, handed_in)
    with ThreadPoolExecutor(len(courses)) as pool:
        list(pool.map(classroom.autograde, courses))
    got: dict[tuple[str, str], dict[str, float]] = {}
    for course in courses:
        for row in classroom.scores(course):
            got.setdefault((row["student"], row["assignment"]), {})[row["exercise"]] = row["score"]
    return {"expected": expected, "got": got, "where": where}


@pytest.mark.parametrize("nb", GRADED, ids=lambda nb: nb.stem)
def test_student_edition_has_no_solution_and_no_hidden_test(graded: dict, nb: Path) -> None:
    release = graded["where"][nb.stem] / "release" / nb.stem / nb.name
    assert release.is_file(), f"generate_assignment wrote no {release}"
    cells = _cells(release)
    text = "\n".join(_source(c) for c in cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text, f"student edition of {nb.name} contains {marker!r}"
    outputs = [c for c in cells if c.get("outputs")]
    assert not outputs, f"student edition of {nb.name} keeps stored outputs"
    released = {_grade_id(c): _source(c) for c in cells if _grade_id(c)}
    for cell in _cells(nb):
        gid, source = _grade_id(cell), _source(cell)
        if gid is None:
            continue
        assert gid in released, f"student edition of {nb.name} lost the cell {gid}"
        kept = released[gid].splitlines()
        kept_stripped = {line.strip() for line in kept}
        if gid.endswith("-answer"):
            assert "raise NotImplementedError()" in released[gid], f"{gid}: no stub"
            outside = {line.strip() for line in source.splitlines()}
            secret = set(_between(source, "### BEGIN SOLUTION", "### END SOLUTION"))
            leaked = (secret - (outside - secret)) & kept_stripped
            assert not leaked, f"{nb.name} {gid}: solution lines in the student edition: {leaked}"
        else:
            hidden = set(_between(source, "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"))
            shown = source.split("### BEGIN HIDDEN TESTS")[0]
            visible = {line.strip() for line in shown.splitlines()}
            leaked = (hidden - visible) & kept_stripped
            assert not leaked, f"{nb.name} {gid}: hidden tests in the student edition: {leaked}"


@pytest.mark.parametrize("nb", GRADED, ids=lambda nb: nb.stem)
def test_autograded_scores(graded: dict, nb: Path) -> None:
    """Full marks for the source and every correct answer, 0 where a wrong answer went in."""
    cases = {k: v for k, v in graded["expected"].items() if k[1] == nb.stem}
    assert {"source", "student"} <= {student for student, _ in cases}
    for (student, stem), want in sorted(cases.items()):
        got = graded["got"].get((student, stem))
        assert got is not None, f"nbgrader has no grades for {student} on {stem}"
        assert got == want, f"{stem}, submission {student!r}: scored {got}, expected {want}"


@pytest.mark.parametrize("nb", GRADED, ids=lambda nb: nb.stem)
def test_autograded_notebooks_fail_only_in_exercises(graded: dict, nb: Path) -> None:
    """The source runs without any error; the student edition fails only in exercise cells."""
    autograded = graded["where"][nb.stem] / "autograded"
    for student, exercise_errors_allowed in (("source", False), ("student", True)):
        path = autograded / student / nb.stem / nb.name
        assert path.is_file(), f"nbgrader did not write {path}"
        for index, cell in enumerate(_cells(path)):
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            if not errors:
                continue
            in_exercise = _grade_id(cell) is not None
            assert in_exercise and exercise_errors_allowed, (
                f"{nb.name} ({student}): cell {index} failed: {errors[0].get('ename')}: "
                f"{errors[0].get('evalue')}"
            )
        if student == "student":
            stubs = [c for c in _cells(path) if (_grade_id(c) or "").endswith("-answer")]
            assert all(
                any(o.get("ename") == "NotImplementedError" for o in c.get("outputs", []))
                for c in stubs
            ), f"{nb.name}: an answer stub of the student edition did not raise"


# -- The teacher guide's commands, run as printed -----------------------------------------------

GUIDE_BLOCK = re.compile(r"^( *)<!-- grading-step -->\n\1```bash\n(.*?)\n\1```", re.S | re.M)


def test_teacher_guide_commands_work_verbatim(tmp_path: Path) -> None:
    """Build, release, collect, autograde, feedback and export exactly as the guide prints them.

    Between the guide's first block (build and release) and its second (collect to export) the
    test plays the class: alice hands in the source notebook of the first graded exercise sheet
    (full marks), bob the untouched student edition (0).
    """
    blocks = [
        textwrap.dedent(indent + body)
        for indent, body in GUIDE_BLOCK.findall(GUIDE.read_text(encoding="utf-8"))
    ]
    assert len(blocks) == 2, "the guide must mark its two grading blocks with <!-- grading-step -->"
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])

    def run(block: str) -> None:
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert proc.returncode == 0, f"guide block failed:\n{block}\n{proc.stderr[-4000:]}"

    run(blocks[0])
    nb = GRADED[0]
    release = tmp_path / "course" / "release" / nb.stem / nb.name
    assert release.is_file(), "the guide's release step wrote no student edition"
    for student, origin in (("alice", nb), ("bob", release)):
        (tmp_path / "handed-in" / student).mkdir(parents=True)
        shutil.copyfile(origin, tmp_path / "handed-in" / student / nb.name)
    run(blocks[1])
    for student in ("alice", "bob"):
        page = tmp_path / "course" / "feedback" / student / nb.stem / f"{nb.stem}.html"
        assert page.is_file(), f"no feedback page for {student}"
    with open(tmp_path / "scores.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    points = exercises(nb)
    assert {(r["student"], r["exercise"]) for r in rows} == {
        (s, e) for s in ("alice", "bob") for e in points
    }
    for row in rows:
        want = points[row["exercise"]] if row["student"] == "alice" else 0.0
        assert float(row["score"]) == want, row
        assert float(row["max_score"]) == points[row["exercise"]], row
    with open(tmp_path / "course" / "grades.csv", encoding="utf-8") as f:
        totals = {
            r["student_id"]: float(r["score"])
            for r in csv.DictReader(f)
            if r["assignment"] == nb.stem
        }
    assert totals == {"alice": sum(points.values()), "bob": 0.0}


# -- The wrapper's own checks (no nbgrader run) -------------------------------------------------


def test_wrapper_rejects_what_nbgrader_would_silently_ignore(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="notebooks"):
        classroom.build(tmp_path / "course", tmp_path / "missing")
    names = classroom.build(tmp_path / "course", GRADED[:1])
    assert names == [GRADED[0].stem]
    assert (tmp_path / "course" / "source" / names[0] / GRADED[0].name).is_file()
    assert "gradebook.db" in (tmp_path / "course" / "nbgrader_config.py").read_text()
    (tmp_path / "handed-in" / "alice").mkdir(parents=True)
    (tmp_path / "handed-in" / "alice" / "renamed.ipynb").write_text("{}")
    with pytest.raises(ValueError, match=r"handed_in: .*renamed\.ipynb"):
        classroom.collect(tmp_path / "course", tmp_path / "handed-in")
    with pytest.raises(ValueError, match="assignments"):
        classroom.autograde(tmp_path / "course", ["no-such-notebook"])
    playground = [nb.stem for nb in classroom.course_notebooks(ROOT / "notebooks")]
    assert not set(playground) & set(classroom.PLAYGROUND), "the playground is no assignment"
