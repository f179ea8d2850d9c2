"""`make audit`: known vulnerabilities in the pinned, hashed requirements, from PyPI's advisory service.

Runs `pip-audit --vulnerability-service pypi --disable-pip --require-hashes` on the given requirements
files (nothing is resolved or installed) and reads its JSON report:

- a vulnerability in any pinned package: list them and exit 1;
- the advisory service unreachable, or answering for none of the packages (a mirror that serves the
  package index but not PyPI's per-release JSON API): print a notice and exit 0 — nothing was audited;
- otherwise exit 0, naming any package that could not be audited.

Usage: python scripts/audit.py requirements.txt requirements-dev.txt
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Errors that mean "the advisory service could not be reached", not "the audit found something".
UNREACHABLE = ("ConnectionError", "ProxyError", "ConnectTimeout", "ReadTimeout", "SSLError", "ServiceError")


def pip_audit_command(requirements: list[str], report: Path) -> list[str]:
    exe = Path(sys.executable).with_name("pip-audit")
    cmd = [str(exe)] if exe.exists() else [shutil.which("pip-audit") or "pip-audit"]
    for req in requirements:
        cmd += ["-r", req]
    return [
        *cmd,
        "--vulnerability-service",
        "pypi",
        "--disable-pip",
        "--require-hashes",
        "--progress-spinner",
        "off",
        "--timeout",
        "20",
        "--format",
        "json",
        "--output",
        str(report),
    ]


def verdict(report: dict) -> tuple[int, list[str]]:
    """(exit code, lines to print) for a pip-audit JSON report."""
    deps = report.get("dependencies", [])
    vulnerable = [d for d in deps if d.get("vulns")]
    skipped = [d for d in deps if "skip_reason" in d]
    if vulnerable:
        lines = ["audit: known vulnerabilities in pinned packages:"]
        for dep in vulnerable:
            for vuln in dep["vulns"]:
                fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed release"
                aliases = ", ".join(vuln.get("aliases") or [])
                lines.append(f"  {dep['name']} {dep['version']}: {vuln['id']} ({aliases}) — fixed in {fixed}")
        return 1, lines
    if deps and len(skipped) == len(deps):
        return 0, [
            f"audit: NOTICE: skipped — the PyPI advisory service answered for none of the {len(deps)} pinned "
            "packages; nothing was audited.",
            f"  first reason: {skipped[0]['skip_reason']}",
        ]
    lines = [f"audit: no known vulnerabilities in {len(deps) - len(skipped)} pinned packages."]
    lines += [f"  not audited: {d['name']}: {d['skip_reason']}" for d in skipped]
    return 0, lines


def main(argv: list[str]) -> int:
    requirements = argv or ["requirements.txt"]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "audit.json"
        proc = subprocess.run(pip_audit_command(requirements, report), capture_output=True, text=True)
        text = report.read_text() if report.exists() else ""
    if not text.strip():
        err = proc.stderr.strip().splitlines()
        if any(name in proc.stderr for name in UNREACHABLE):
            print("audit: NOTICE: skipped — the PyPI advisory service could not be reached; nothing was audited.")
            print(f"  {err[-1] if err else ''}")
            return 0
        print(f"audit: pip-audit failed (exit {proc.returncode}):", file=sys.stderr)
        print("\n".join(err[-20:]), file=sys.stderr)
        return proc.returncode or 1
    code, lines = verdict(json.loads(text))
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
