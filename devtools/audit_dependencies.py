"""CI's dependency audit: pip-audit over requirements.lock, said plainly.

Exit 1 when a locked version has a known vulnerability. When the vulnerability service
cannot be reached (pip-audit then skips every package with "not found on PyPI" and still
prints "No known vulnerabilities found"), say that nothing was audited and exit 0: an
unreachable service is not a finding, and it must not look like a clean audit either.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    result = subprocess.run(  # noqa: S603  (a fixed command, no user input)
        [
            str(ROOT / ".venv" / "bin" / "pip-audit"),
            "--requirement",
            str(ROOT / "requirements.lock"),
            "--no-deps",
            "--disable-pip",
            "--format",
            "json",
            "--progress-spinner",
            "off",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        print("pip-audit: NOT RUN: the vulnerability service could not be reached.")
        print(result.stderr.strip().splitlines()[-1:] or "")
        return 0
    dependencies = report.get("dependencies", [])
    skipped = [d for d in dependencies if "skip_reason" in d]
    vulnerable = [d for d in dependencies if d.get("vulns")]
    for dependency in vulnerable:
        for vuln in dependency["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
            print(
                f"pip-audit: {dependency['name']} {dependency['version']}: {vuln['id']} ({fixed})"
            )
    audited = len(dependencies) - len(skipped)
    if dependencies and not audited:
        print(
            f"pip-audit: NOT AUDITED: the vulnerability service could not be reached, so none "
            f"of the {len(dependencies)} locked packages was checked. Run `make audit` where "
            "pypi.org's JSON API is reachable."
        )
        return 0
    print(
        f"pip-audit: {audited} packages audited, {len(skipped)} skipped, "
        f"{len(vulnerable)} with known vulnerabilities."
    )
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
