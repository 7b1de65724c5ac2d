"""A hostile step in the real sandbox: what it may not see, reach or change, and what a trusted step still gets.

Each probe prints `LEAK:<what>` only when the attack works, so a worker with WORKER_SANDBOX=off fails
these tests (tried by hand: every probe but `root` leaks then).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from statemachines.errors import ConfigError
from tests.harness.git_repos import git
from tests.harness.processes import PROJECT, python_module
from tests.workers.conftest import SECRET_VALUE, build_step, wait_execution
from tests.workers.test_worker_process import log_lines
from workers.config import WorkerConfig


def probes(worker_env: dict[str, str], engine_url: str, worker_pid: int) -> str:
    redis_port = urlsplit(worker_env["REDIS_URL"]).port
    engine_port = urlsplit(engine_url).port
    secrets, worker_dir = worker_env["WORKER_SECRETS_FILE"], worker_env["WORKER_DIR"]
    return f"""set +e +o pipefail
for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < "$f"; done 2>/dev/null \\
  | grep -qE '^(REDIS_URL|SFN_ENDPOINT_URL|WORKER_SECRETS_FILE|GITHUB_TOKEN)=' && echo LEAK:environ
grep -rqs {SECRET_VALUE} /etc /stepline /tmp /dev/shm && echo LEAK:secret-value
cat {secrets} >/dev/null 2>&1 && echo LEAK:secrets-file
ls {worker_dir} >/dev/null 2>&1 && echo LEAK:worker-dir
ls {PROJECT} >/dev/null 2>&1 && echo LEAK:project
(echo PING > /dev/tcp/127.0.0.1/{redis_port}) 2>/dev/null && echo LEAK:redis
(echo > /dev/tcp/127.0.0.1/{engine_port}) 2>/dev/null && echo LEAK:engine
kill -0 {worker_pid} 2>/dev/null && echo LEAK:worker-process
[ "$(ls /proc | grep -c '^[0-9]')" -gt 10 ] && echo LEAK:other-processes
[ "$(id -u)" = 0 ] && echo LEAK:root
[ "$(id -u)" = "$(stat -c %u {worker_dir} 2>/dev/null || echo none)" ] && echo LEAK:worker-user
touch /usr/pwned /etc/pwned 2>/dev/null && echo LEAK:system-writable
touch "$HOME/ok" /tmp/ok ./ok && echo WROTE:own-places
echo "TRUSTED=$STEPLINE_TRUSTED KEY=${{DEPLOY_KEY:-none}}"
"""


FORGED_RUN = (
    'States.JsonMerge($$.Execution.Input, States.StringToJson(\'{"trusted": true, "fork": false}\'), false)'
)


@pytest.fixture
def hostile(make_repo, start_worker, worker_env, engine_url):
    repo = make_repo("app")
    sha = repo.commit({"README.md": "app\n"})
    repo.push("main")
    worker = start_worker()
    return repo, sha, probes(worker_env, engine_url, worker.process.pid)


def test_a_forks_step_finds_nothing_of_the_machine_even_with_forged_trust(
    hostile, run_pipeline, sfn, redis_client
):
    repo, sha, script = hostile
    definition = build_step([script], step="attack")
    definition["States"]["Step"]["Parameters"].pop("run.$")
    definition["States"]["Step"]["Parameters"]["run.$"] = FORGED_RUN
    arn = run_pipeline(
        definition,
        activity_name="stepline-untrusted-build",
        clone_url=repo.url,
        sha=sha,
        trusted=False,
        fork=True,
    )
    assert wait_execution(sfn, arn, timeout=60)["status"] == "SUCCEEDED"
    lines = log_lines(redis_client, step="attack")
    assert [line for line in lines if line.startswith("LEAK:")] == [], lines
    assert "WROTE:own-places" in lines and "TRUSTED=false KEY=none" in lines


def test_a_trusted_step_gets_its_secrets_and_the_network_but_still_not_the_worker(
    hostile, run_pipeline, sfn, redis_client
):
    repo, sha, script = hostile
    arn = run_pipeline(build_step([script], step="trusted"), clone_url=repo.url, sha=sha)
    assert wait_execution(sfn, arn, timeout=60)["status"] == "SUCCEEDED"
    lines = log_lines(redis_client, step="trusted")
    leaks = {line for line in lines if line.startswith("LEAK:")}
    # a trusted step shares the machine's network (Redis and the engine answer only with credentials
    # it does not have); its secret is in its own environment, which its grep finds
    assert leaks <= {"LEAK:redis", "LEAK:engine", "LEAK:secret-value"}, lines
    assert "TRUSTED=true KEY=***" in lines and "WROTE:own-places" in lines


def test_steps_of_one_run_see_their_own_tree_and_not_each_others(
    make_repo, start_worker, run_pipeline, sfn, redis_client
):
    repo = make_repo("app")
    sha = repo.commit({"README.md": "app\n"})
    repo.push("main")
    start_worker()
    look = "ls / /stepline; cat /stepline/event.json | head -c 20; echo; git log --oneline | head -1"
    first = run_pipeline(
        build_step(["echo mine > mark; sleep 1", look], step="a"), clone_url=repo.url, sha=sha
    )
    second = run_pipeline(
        build_step([f"ls -a; {look}"], step="b"), clone_url=repo.url, sha=sha, run_id="run-2"
    )
    assert wait_execution(sfn, first)["status"] == "SUCCEEDED"
    assert wait_execution(sfn, second)["status"] == "SUCCEEDED"
    a, b = log_lines(redis_client, step="a"), log_lines(redis_client, "run-2", "b")
    assert "mark" not in b and "README.md" in b  # its own checkout, not the other task's tree
    assert any(line.startswith("{") for line in a)  # the event file
    top = set(b[b.index("$ ls -a; " + look) + 1 :])
    assert {"home", "src", "event.json", "mirror"} <= top and "worker" not in top


def test_a_worker_that_cannot_build_its_sandbox_refuses_to_start(tmp_path, worker_env):
    env = {**os.environ, **worker_env, "PATH": str(tmp_path / "empty")}  # no bwrap to be found
    refused = subprocess.run(python_module("workers"), env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "cannot build a step's sandbox (bwrap is not installed)" in refused.stderr
    assert "WORKER_SANDBOX=off" in refused.stderr and "Traceback" not in refused.stderr
    off = WorkerConfig.from_env({**worker_env, "WORKER_SANDBOX": "off"})
    assert off.sandbox == "off"


def test_the_sandbox_settings_are_checked(tmp_path, redis_url):
    env = {"REDIS_URL": redis_url, "WORKER_DIR": str(tmp_path / "w"), "WORKER_SANDBOX": "docker"}
    with pytest.raises(ConfigError) as refused:
        WorkerConfig.from_env(env, check_services=False)
    assert "WORKER_SANDBOX='docker'" in str(refused.value)


def test_secrets_go_to_their_repository_and_pool_only(tmp_path):
    secrets = tmp_path / "secrets"
    secrets.write_text(
        "SHARED=s\n[octo/app]\nAPP=a\nSHARED=narrower\n[octo/app deploy]\nDEPLOY=d\n[* deploy]\nANY_DEPLOY=x\n"
    )
    config = WorkerConfig.from_env(
        {"REDIS_URL": "redis://x", "WORKER_DIR": str(tmp_path / "w"), "WORKER_SECRETS_FILE": str(secrets)},
        check_services=False,
    )
    assert config.secrets.for_step("octo/app", "build") == {"SHARED": "narrower", "APP": "a"}
    assert config.secrets.for_step("Octo/App", "deploy") == {
        "SHARED": "narrower",
        "APP": "a",
        "DEPLOY": "d",
        "ANY_DEPLOY": "x",
    }
    assert config.secrets.for_step("octo/other", "build") == {"SHARED": "s"}
    assert config.secrets.for_step("octo/other", "deploy") == {"SHARED": "s", "ANY_DEPLOY": "x"}
    secrets.write_text("[not a repository]\nX=1\n[octo/app BAD]\nY=2\n")
    with pytest.raises(ConfigError) as refused:
        WorkerConfig.from_env(
            {
                "REDIS_URL": "redis://x",
                "WORKER_DIR": str(tmp_path / "w"),
                "WORKER_SECRETS_FILE": str(secrets),
            },
            check_services=False,
        )
    assert "line 1" in str(refused.value) and "line 3" in str(refused.value)


CHROOT_PROBE = """
import sys, tempfile
from pathlib import Path
from workers.mount_namespace import root_is_a_mount_point
from workers.sandbox import Sandbox
print("root is a mount point:", root_is_a_mount_point())
Sandbox("bubblewrap", 64000, 64000).check(Path(tempfile.mkdtemp()))
print("sandbox built")
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="a chroot needs root")
def test_a_worker_in_a_chroot_builds_its_sandbox(tmp_path):
    # as on a machine made with debootstrap: `/` is a directory, not a mount point (bwrap then fails
    # "Failed to make / slave" unless the worker gives each sandbox a namespace where it is one)
    root = tmp_path / "chroot"
    binds = ["/usr", "/etc", "/proc", "/dev", "/root", str(PROJECT)]
    # /tmp first: the project itself may live under /tmp (a CI clone), and must stay visible
    script = ["set -e", f"mkdir -p {root}/tmp && mount -t tmpfs tmpfs {root}/tmp"]
    for path in binds:
        script.append(f"mkdir -p {root}{path} && mount --rbind {path} {root}{path}")
    for link in ("/bin", "/sbin", "/lib", "/lib64"):
        if os.path.islink(link):
            script.append(f"ln -s {os.readlink(link)} {root}{link}")
    script.append(
        f'cd {PROJECT} && chroot {root} sh -c \'cd {PROJECT} && exec "$0" -c "$1"\' {sys.executable} "$PROBE"'
    )
    # the binds live in a private mount namespace of their own (the worker's helper makes one, even where
    # this test itself runs in a chroot, as on a machine made with debootstrap)
    helper = [sys.executable, "-I", str(PROJECT / "workers" / "mount_namespace.py")]
    done = subprocess.run(
        [*helper, "sh", "-c", "\n".join(script)],
        env={**os.environ, "PROBE": CHROOT_PROBE},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "root is a mount point: False" in done.stdout and "sandbox built" in done.stdout


FAKE_SETPRIV = '#!/bin/sh\necho "FAKE setpriv ran as uid $(id -u)"\nexec /usr/bin/setpriv "$@"\n'
PRELOAD_C = r"""
#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void said(void) { fprintf(stderr, "PRELOADED into uid %d\n", getuid()); }
"""


def test_a_steps_environment_never_picks_what_runs_as_root(
    make_repo, start_worker, run_pipeline, sfn, redis_client
):
    # a pipeline sets the step's PATH and loader variables: bwrap and setpriv run as root before the step's
    # user takes over, so neither may be found through that PATH nor load that library
    repo = make_repo("app")
    files: dict[str, str | bytes] = {
        "bin/setpriv": FAKE_SETPRIV,
        "bin/bwrap": FAKE_SETPRIV,
        "preload.c": PRELOAD_C,
    }
    sha = repo.commit(files)
    git("update-index", "--chmod=+x", "bin/setpriv", "bin/bwrap", cwd=repo.work)
    sha = repo.commit({}, "executable")
    repo.push("main")
    start_worker()
    compiler = shutil.which("cc") or shutil.which("gcc")
    build = [f"{compiler} -shared -fPIC -o /stepline/src/preload.so preload.c"] if compiler else []
    env = {"PATH": "/stepline/src/bin:/usr/local/bin:/usr/bin:/bin"}
    if compiler:
        env["LD_PRELOAD"] = "/stepline/src/preload.so"
    commands = [*build, 'echo "step uid $(id -u) PATH=$PATH"']
    arn = run_pipeline(build_step(commands, env=env), clone_url=repo.url, sha=sha)
    assert wait_execution(sfn, arn, timeout=60)["status"] == "SUCCEEDED"
    lines = log_lines(redis_client)
    assert not [line for line in lines if "FAKE setpriv" in line or "uid 0" in line], lines
    assert "step uid 64000 PATH=/stepline/src/bin:/usr/local/bin:/usr/bin:/bin" in lines
    if compiler:  # the step's own processes get its LD_PRELOAD: only they, as the step user
        assert "PRELOADED into uid 64000" in lines


FORK_PROBE = (
    "python3 -c 'import os, time\n"
    "n = 0\n"
    "try:\n"
    "    while n < 500:\n"
    "        if os.fork() == 0:\n"
    "            time.sleep(3); os._exit(0)\n"
    "        n += 1\n"
    "except OSError as exc:\n"
    '    print("FORK REFUSED", type(exc).__name__)\n'
    'print("FORKS", n)\''
)


@pytest.mark.skipif(os.geteuid() != 0, reason="the step user's limits apply when the worker is root")
def test_a_fork_bomb_stops_at_the_step_users_process_limit_and_leaves_no_core(
    make_repo, start_worker, run_pipeline, sfn, redis_client
):
    repo = make_repo("app")
    sha = repo.commit({"README.md": "app\n"})
    repo.push("main")
    start_worker(WORKER_STEP_MAX_PROCESSES="40")
    arn = run_pipeline(
        build_step(["ulimit -u; ulimit -c", FORK_PROBE], step="bomb"), clone_url=repo.url, sha=sha
    )
    assert wait_execution(sfn, arn, timeout=60)["status"] == "SUCCEEDED"
    lines = log_lines(redis_client, step="bomb")
    assert "40" in lines and "0" in lines, lines  # ulimit -u, ulimit -c
    forks = int(next(line for line in lines if line.startswith("FORKS ")).split()[1])
    assert forks < 40 and any(line.startswith("FORK REFUSED") for line in lines), lines
