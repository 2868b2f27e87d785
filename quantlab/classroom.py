"""Grade the course's exercises with nbgrader: a thin wrapper around its command line.

A teacher runs, from a clone of the repository::

    python -m quantlab.classroom build course        # the nbgrader course directory
    python -m quantlab.classroom release course      # student editions in course/release/
    python -m quantlab.classroom collect course handed-in   # handed-in/<student>/<notebook>.ipynb
    python -m quantlab.classroom autograde course    # runs every submission, scores in the DB
    python -m quantlab.classroom feedback course     # HTML feedback in course/feedback/
    python -m quantlab.classroom export course scores.csv   # one row per student and exercise

Each step calls nbgrader itself (``python -m nbgrader generate_assignment``, ``autograde``,
``generate_feedback``, and its gradebook API for the scores); nothing of nbgrader is re-implemented
here. ``build`` only lays out the directory nbgrader expects: one assignment per course notebook
(every numbered notebook of ``notebooks/`` except the playground), named after the notebook,
``source/<assignment>/<assignment>.ipynb``, and an ``nbgrader_config.py`` that keeps the gradebook
database inside the course directory. ``collect`` copies a folder of handed-in notebooks into
nbgrader's ``submitted/<student>/<assignment>/`` layout (nbgrader's own ``collect`` needs a shared
exchange directory on one machine; a class that uses it can skip this step).

This module is the course layer: the mathematics never imports it, and it imports nbgrader only
when it reads the scores.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = [
    "PLAYGROUND",
    "assignments",
    "autograde",
    "build",
    "collect",
    "course_notebooks",
    "export_scores",
    "feedback",
    "main",
    "release",
    "run_nbgrader",
    "scores",
]

#: Notebooks that are not assignments: the playground has no exercises.
PLAYGROUND = ("06-playground",)

CONFIG = '''\
"""nbgrader configuration of the quantlab course (written by ``python -m quantlab.classroom``)."""

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file
c.CourseDirectory.course_id = "quantlab"
# The gradebook lives in this directory (nbgrader's default root is the working directory).
c.CourseDirectory.db_url = "sqlite:///gradebook.db"
# A cell may train a small network: allow a few minutes per cell, not nbgrader's 30 s.
c.Execute.timeout = 600
c.Execute.startup_timeout = 120
'''


def course_notebooks(notebooks: str | Path = "notebooks") -> list[Path]:
    """The numbered course notebooks of a folder, in order, without the playground."""
    folder = Path(notebooks)
    if not folder.is_dir():
        raise ValueError(f"notebooks must be a folder of notebooks, got {str(folder)!r}")
    found = sorted(p for p in folder.glob("[0-9]*.ipynb") if p.stem not in PLAYGROUND)
    if not found:
        raise ValueError(f"notebooks: no numbered notebook in {str(folder)!r}")
    return found


def build(
    course: str | Path, notebooks: str | Path | Iterable[str | Path] = "notebooks"
) -> list[str]:
    """Lay out an nbgrader course directory with one assignment per course notebook.

    Parameters
    ----------
    course
        The course directory to create (or update: sources are copied again).
    notebooks
        A folder (every course notebook in it is taken) or an explicit list of notebooks.

    Returns
    -------
    list of str
        The assignment names, which are the notebook names without ``.ipynb``.
    """
    if isinstance(notebooks, (str, Path)):
        paths = course_notebooks(notebooks)
    else:
        paths = [Path(p) for p in notebooks]
        missing = [str(p) for p in paths if not p.is_file()]
        if not paths or missing:
            raise ValueError(f"notebooks: not notebook files: {missing or 'none given'}")
    root = Path(course)
    root.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text(CONFIG, encoding="utf-8")
    names = []
    for path in paths:
        target = root / "source" / path.stem
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / path.name)
        names.append(path.stem)
    return names


def assignments(course: str | Path) -> list[str]:
    """The assignments of a course directory made by :func:`build`, in order."""
    source = Path(course) / "source"
    if not source.is_dir():
        raise ValueError(f"course: {str(course)!r} has no source/ folder (run build first)")
    return sorted(p.name for p in source.iterdir() if p.is_dir())


def run_nbgrader(course: str | Path, *args: str) -> None:
    """Run ``python -m nbgrader ARGS`` in the course directory; raise if it fails."""
    cmd = [sys.executable, "-m", "nbgrader", *args]
    proc = subprocess.run(cmd, cwd=course, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"`nbgrader {' '.join(args)}` failed with exit code {proc.returncode}")


def _selected(course: str | Path, names: Sequence[str] | None) -> list[str]:
    """The assignments to run: all of them as nbgrader's glob ``*`` (one process), or ``names``."""
    known = assignments(course)
    if not names:
        return ["*"]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"assignments: {unknown} not in the course (known: {known})")
    return list(names)


def release(course: str | Path, names: Sequence[str] | None = None) -> None:
    """``nbgrader generate_assignment`` for each assignment: the student editions.

    They land in ``course/release/<assignment>/``: solutions replaced by
    ``raise NotImplementedError()`` stubs, hidden tests removed, outputs cleared.
    """
    for name in _selected(course, names):
        run_nbgrader(course, "generate_assignment", name, "--force")


def collect(course: str | Path, handed_in: str | Path) -> list[tuple[str, str]]:
    """Copy ``handed_in/<student>/<assignment>.ipynb`` to nbgrader's ``submitted/`` layout.

    Returns the ``(student, assignment)`` pairs collected. A notebook whose name is not an
    assignment of the course is an error (a renamed file would otherwise be silently ignored).
    """
    folder = Path(handed_in)
    if not folder.is_dir():
        raise ValueError(f"handed_in must be a folder of student folders, got {str(folder)!r}")
    known = set(assignments(course))
    pairs = []
    for student in sorted(p for p in folder.iterdir() if p.is_dir()):
        for nb in sorted(student.glob("*.ipynb")):
            if nb.stem not in known:
                raise ValueError(f"handed_in: {nb} is not a notebook of the course {sorted(known)}")
            target = Path(course) / "submitted" / student.name / nb.stem
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(nb, target / nb.name)
            pairs.append((student.name, nb.stem))
    if not pairs:
        raise ValueError(f"handed_in: no <student>/<notebook>.ipynb in {str(folder)!r}")
    return pairs


def autograde(course: str | Path, names: Sequence[str] | None = None) -> None:
    """``nbgrader autograde`` of every submission (all students of an assignment in one run).

    Each submission is run top to bottom in a fresh kernel, with its check cells restored from
    the gradebook (a deleted or edited check cell changes nothing); the scores go to the
    gradebook and the executed notebooks to ``course/autograded/``.
    """
    for name in _selected(course, names):
        run_nbgrader(course, "autograde", name, "--force")


def feedback(course: str | Path, names: Sequence[str] | None = None) -> None:
    """``nbgrader generate_feedback``: one HTML page per student and notebook in feedback/."""
    for name in _selected(course, names):
        run_nbgrader(course, "generate_feedback", name, "--force")


def scores(course: str | Path) -> list[dict[str, object]]:
    """Per student and exercise: the score nbgrader's autograder gave, from its gradebook.

    Returns one dict per graded cell with keys ``student``, ``assignment``, ``exercise`` (the
    check cell's ``grade_id``), ``score`` and ``max_score``.
    """
    from nbgrader.api import Gradebook  # course layer: nbgrader is needed only here

    db = Path(course).resolve() / "gradebook.db"
    if not db.is_file():
        raise ValueError(f"course: no gradebook in {str(course)!r} (run release first)")
    rows: list[dict[str, object]] = []
    with Gradebook(f"sqlite:///{db}") as gb:
        for assignment in gb.assignments:
            for submission in sorted(assignment.submissions, key=lambda s: s.student.id):
                for notebook in submission.notebooks:
                    for grade in sorted(notebook.grades, key=lambda g: g.name):
                        rows.append(
                            {
                                "student": submission.student.id,
                                "assignment": assignment.name,
                                "exercise": grade.name,
                                "score": float(grade.score),
                                "max_score": float(grade.max_score),
                            }
                        )
    return rows


def export_scores(course: str | Path, path: str | Path) -> int:
    """Write :func:`scores` as CSV (one row per student and exercise); return the row count."""
    rows = scores(course)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, ["student", "assignment", "exercise", "score", "max_score"])
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: ``python -m quantlab.classroom STEP COURSE ...`` (see the module)."""
    parser = argparse.ArgumentParser(
        prog="python -m quantlab.classroom", description="Grade the course with nbgrader."
    )
    steps = parser.add_subparsers(dest="step", required=True)
    p = steps.add_parser("build", help="lay out the nbgrader course directory")
    p.add_argument("course")
    p.add_argument("--notebooks", default="notebooks", help="folder of the course notebooks")
    for step in ("release", "autograde", "feedback"):
        p = steps.add_parser(step, help=f"nbgrader's {step} step for each assignment")
        p.add_argument("course")
        p.add_argument("assignments", nargs="*", help="only these assignments")
    p = steps.add_parser("collect", help="copy handed-in/<student>/<notebook>.ipynb in")
    p.add_argument("course")
    p.add_argument("handed_in")
    p = steps.add_parser("export", help="per-student per-exercise scores as CSV")
    p.add_argument("course")
    p.add_argument("csv")
    args = parser.parse_args(argv)
    try:
        if args.step == "build":
            names = build(args.course, args.notebooks)
            print(f"{len(names)} assignments in {args.course}: {', '.join(names)}")
        elif args.step == "release":
            release(args.course, args.assignments)
        elif args.step == "collect":
            pairs = collect(args.course, args.handed_in)
            print(f"{len(pairs)} submissions collected")
        elif args.step == "autograde":
            autograde(args.course, args.assignments)
        elif args.step == "feedback":
            feedback(args.course, args.assignments)
        else:
            print(f"{export_scores(args.course, args.csv)} scores written to {args.csv}")
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover - the command line
    sys.exit(main())
