"""Docs stay true: parameter tables match the code, README commands match CI."""

from pathlib import Path

from pbhno_gym.physics.docs import PATHWAY_TABLES, render

ROOT = Path(__file__).resolve().parents[1]


def test_models_md_tables_match_code():
    text = (ROOT / "docs" / "models.md").read_text()
    for name in PATHWAY_TABLES:
        assert f"<!-- table:{name} -->" in text
    assert render(text) == text, "docs/models.md is stale: run python scripts/gen_docs.py"


def test_ci_runs_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd = next(line for line in ci.splitlines() if "pytest" in line).strip()
    assert test_cmd in readme
