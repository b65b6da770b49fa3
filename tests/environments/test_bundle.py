from __future__ import annotations

import subprocess
import sys

from dlspec_ray.environments.bundle import AGENT_MODULES, agent_bundle, agent_digest


def test_the_agent_imports_with_nothing_but_the_standard_library(tmp_path):
    bundle = agent_bundle(tmp_path)
    assert bundle.name == f"agent-{agent_digest()}"
    base = getattr(sys, "_base_executable", sys.executable)
    code = (
        "import sys, dlspec_ray.environments.agent as a; "
        "print(sorted(m for m in ('yaml', 'numpy', 'ray', 'requests', 'pyarrow') "
        "if m in sys.modules)); print(a.__file__)"
    )
    done = subprocess.run(
        [base, "-S", "-c", code],  # -S: no site-packages at all
        env={"PYTHONPATH": str(bundle)},
        cwd=tmp_path,  # not the repository, whose dlspec_ray would be found first
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    heavy, path = done.stdout.splitlines()
    assert heavy == "[]"
    assert path.startswith(str(bundle))


def test_the_bundle_is_made_once_and_holds_exact_copies(tmp_path):
    first = agent_bundle(tmp_path)
    assert agent_bundle(tmp_path) == first
    import dlspec_ray

    package = __import__("pathlib").Path(dlspec_ray.__file__).parent
    for rel in AGENT_MODULES:
        assert (first / "dlspec_ray" / rel).read_bytes() == (package / rel).read_bytes()
