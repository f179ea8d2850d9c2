"""scripts/audit.py (`make audit`): how a pip-audit JSON report becomes pass, notice or failure."""

import importlib.util

from tests.live import ROOT

_spec = importlib.util.spec_from_file_location("audit", ROOT / "scripts" / "audit.py")
audit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(audit)


def test_a_vulnerability_fails():
    code, lines = audit.verdict(
        {
            "dependencies": [
                {"name": "django", "version": "5.2.0", "vulns": [{"id": "PYSEC-1", "fix_versions": ["5.2.1"]}]},
                {"name": "redis", "version": "8.1.0", "vulns": []},
            ]
        }
    )
    assert code == 1
    assert any("django 5.2.0: PYSEC-1" in line and "5.2.1" in line for line in lines)


def test_clean_passes_and_names_what_was_not_audited():
    code, lines = audit.verdict(
        {
            "dependencies": [
                {"name": "django", "version": "5.2.19", "vulns": []},
                {"name": "georeport", "skip_reason": "Dependency not found on PyPI"},
            ]
        }
    )
    assert code == 0
    assert lines[0] == "audit: no known vulnerabilities in 1 pinned packages."
    assert "georeport" in lines[1]


def test_nothing_audited_is_a_notice_not_a_pass_or_failure():
    code, lines = audit.verdict({"dependencies": [{"name": "django", "skip_reason": "Dependency not found on PyPI"}]})
    assert code == 0
    assert "NOTICE: skipped" in lines[0]
