"""The READMEs' recipes work as written on a machine with no AWS configuration (no ~/.aws, no AWS_* variables).

Each runs as a subprocess with a clean environment: PATH, an empty HOME, and nothing else; the engine
recipes in a directory holding `data/engine-access-keys` as `make run` writes it, against an engine on a
free port (the one change made to the recipe's text: 8083 becomes that port).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.processes import PROJECT, start_engine

ENGINE_KEY = "SLREADMERECIPE000001:" + "0123456789abcdef" * 2 + "01234567"


def code_blocks(readme: Path, heading: str, language: str) -> list[str]:
    """The ```language blocks of a README's section under `heading`, in order."""
    text = readme.read_text()
    section = text[text.index(heading) + len(heading) :]
    section = re.split(r"\n#{2,6} ", section, maxsplit=1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


def clean_env(home: Path) -> dict[str, str]:
    """What a fresh machine's shell has: no AWS settings, a HOME with no ~/.aws."""
    return {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8"}


def run(args: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=clean_env(home), capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def engine_dir(tmp_path, processes, redis_url) -> tuple[Path, str]:
    """A directory with `data/engine-access-keys` (as `make run` writes it), and the port of an engine accepting that key."""
    url = start_engine(processes, redis_url, ENGINE_ACCESS_KEYS=ENGINE_KEY)
    work = tmp_path / "project"
    (work / "data").mkdir(parents=True)
    (work / "data" / "engine-access-keys").write_text(ENGINE_KEY + "\n")
    return work, url.rsplit(":", 1)[1]


@pytest.fixture
def home(tmp_path) -> Path:
    empty = tmp_path / "home"
    empty.mkdir()
    return empty


def test_the_engine_readme_boto3_recipe_works_without_aws_configuration(engine_dir, home):
    work, port = engine_dir
    [recipe] = code_blocks(PROJECT / "statemachines/engine/README.md", "### Pointing clients at it", "python")
    script = recipe.replace("8083", port) + '\nprint("activities:", sfn.list_activities()["activities"])\n'
    result = run([sys.executable, "-c", script], work, home)
    assert result.returncode == 0, result.stderr
    assert "activities: []" in result.stdout


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")
@pytest.mark.parametrize(
    ("readme", "heading"),
    [("statemachines/engine/README.md", "### Pointing clients at it"), ("README.md", "## Two commands")],
)
def test_the_aws_cli_recipes_work_without_aws_configuration(engine_dir, home, readme, heading):
    work, port = engine_dir
    [recipe] = [
        block for block in code_blocks(PROJECT / readme, heading, "sh") if "aws stepfunctions" in block
    ]
    result = run(["bash", "-euc", recipe.replace("8083", port)], work, home)
    assert result.returncode == 0, result.stderr
    assert '"stateMachines": []' in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--pipeline", "statemachines/pipelines/release.asl.json"],  # PIPELINES.md, "Checking a pipeline"
        ["--all", "--role-arn", "arn:aws:iam::123456789012:role/stepline-states"],  # README, "Run on AWS"
    ],
)
def test_a_deploy_dry_run_needs_no_credentials(home, args):
    result = run([sys.executable, "-m", "statemachines", "deploy", *args, "--dry-run"], PROJECT, home)
    assert result.returncode == 0, result.stderr
    assert "no AWS credentials" in result.stderr
    assert (
        "activity stepline-build: would be created arn:aws:states:us-east-1:<account>:activity:stepline-build"
        in (result.stdout)
    )
    assert "state machine stepline-release: would be created" in result.stdout


def test_a_deploy_without_credentials_says_what_to_do(home, tmp_path):
    result = run(
        [sys.executable, "-m", "statemachines", "deploy", "--role-arn", "arn:aws:iam::1:role/r"],
        PROJECT,
        home,
    )
    assert result.returncode == 1
    assert "no AWS credentials" in result.stderr and "--dry-run" in result.stderr


def api_routes() -> list[str]:
    """`METHOD /api/path` of every route in service/dashboard/api.py, with `<action>`/`<decision>` spelled out."""
    from service.run_actions import RUN_ACTIONS

    source = (PROJECT / "service" / "dashboard" / "api.py").read_text()
    routes = []
    for method, path in re.findall(r'@api\.(get|post)\("([^"]+)"\)', source):
        path = re.sub(r"<path:(\w+)>", r"<\1>", path)
        names = {"<action>": list(RUN_ACTIONS), "<decision>": ["approve", "reject"]}
        choices = next((values for key, values in names.items() if key in path), None)
        for value in choices or [None]:
            shown = path if value is None else re.sub(r"<(action|decision)>", value, path)
            routes.append(f"{method.upper()} /api{shown}")
    return routes


def test_the_readme_lists_every_json_api_endpoint_the_port_and_the_badge():
    readme = (PROJECT / "README.md").read_text()
    missing = [route for route in api_routes() if f"`{route}`" not in readme]
    assert not missing, f"README.md does not list {missing}"
    assert "http://127.0.0.1:8080/" in readme
    assert "/badge/<owner>/<repo>.svg?branch=main" in readme


def test_the_first_make_run_says_what_it_installs(tmp_path):
    # a fresh virtualenv's path: make shows every command it would run to create it, printing included
    result = subprocess.run(
        ["make", "-n", f"VENV={tmp_path / 'venv'}", "setup"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Installing Stepline's pinned Python packages" in result.stdout


def test_the_readme_lists_the_api_routes_of_every_dashboard_module():
    """Routes under /api outside api.py (manual runs, schedules, artifacts) are listed too."""
    readme = (PROJECT / "README.md").read_text()
    routes = []
    for module in sorted((PROJECT / "service" / "dashboard").glob("*.py")):
        source = module.read_text()
        for blueprint, method, path in re.findall(r'@(\w+)\.(get|post)\("([^"]+)"\)', source):
            if blueprint == "api":
                routes.append(f"{method.upper()} /api{path}")
            elif path.startswith("/api/"):
                routes.append(f"{method.upper()} {path}")
    routes = [re.sub(r"<path:(\w+)>", r"<\1>", route) for route in routes]
    plain = [route for route in routes if "<action>" not in route and "<decision>" not in route]
    assert "POST /api/runs" in plain and "GET /api/runs/<run_id>/artifacts" in plain
    missing = [route for route in plain if f"`{route}" not in readme]
    assert not missing, f"README.md does not list {missing}"


def test_the_pipeline_check_recipe_passes_a_good_pipeline_and_names_a_bad_ones_file(home, tmp_path):
    [recipe] = [
        block
        for block in code_blocks(PROJECT / "README.md", "## Example pipelines", "sh")
        if "statemachines check" in block
    ]
    command = recipe.strip().replace(".venv/bin/python", sys.executable)
    work = tmp_path / "app"
    (work / ".stepline").mkdir(parents=True)
    pipeline = work / ".stepline" / "pipeline.asl.json"
    shutil.copy(PROJECT / "statemachines" / "pipelines" / "parallel.asl.json", pipeline)
    env = {**clean_env(home), "PYTHONPATH": str(PROJECT)}
    good = subprocess.run(
        ["bash", "-euc", command], cwd=work, env=env, capture_output=True, text=True, check=False
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert ".stepline/pipeline.asl.json: OK" in good.stdout + good.stderr
    pipeline.write_text('{"StartAt": "Nowhere", "States": {}}')
    bad = subprocess.run(
        ["bash", "-euc", command], cwd=work, env=env, capture_output=True, text=True, check=False
    )
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert ".stepline/pipeline.asl.json" in bad.stdout + bad.stderr and "Traceback" not in bad.stderr


def test_the_sign_in_hash_recipe_prints_a_hash_of_the_password(home):
    from werkzeug.security import check_password_hash

    readme = (PROJECT / "README.md").read_text()
    found = re.search(r"with a hash from\s+`([^`]+)`", readme)
    assert found, "README.md no longer says how to make a STEPLINE_USERS hash"
    command = found.group(1).replace(".venv/bin/python", sys.executable).split()
    made = subprocess.run(
        command,
        cwd=PROJECT,
        env=clean_env(home),
        input="s3cret\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    assert check_password_hash(made.stdout.strip(), "s3cret")
    # asking for help prints the usage instead of waiting for a password
    helped = subprocess.run(
        [*command, "--help"],
        cwd=PROJECT,
        env=clean_env(home),
        input="",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert helped.returncode == 0 and "usage:" in helped.stdout and "password" not in helped.stderr
