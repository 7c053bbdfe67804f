"""Shared fixtures: run the project's pipelines for real in the ``test`` environment.

The ``test`` environment (conf/test) shrinks every size and points
``globals.data_root`` at ``data/test`` so the suite never touches a user's data.
Pipelines are run once per session, in dependency order, and later tests read
their outputs through the same Kedro catalog.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TEST_DATA_ROOT = PROJECT_ROOT / "data" / "test"

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
# One OpenBLAS thread per test process (and for the processes tests start): the tests'
# small logistic-regression fits (scipy's L-BFGS on tiny BLAS calls) ran 3x slower
# with two OpenBLAS threads on the busy 2-core machine, as the pipeline's baselines did
# (docs/training_speed.md); pytest-xdist already puts one worker on each core.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
_BLAS_THREADS = int(os.environ["OPENBLAS_NUM_THREADS"])


def run_pipeline(name: str, env: str = "test", **runtime_params) -> dict:
    """Run one registered pipeline through a real KedroSession and return its outputs."""
    bootstrap_project(PROJECT_ROOT)
    with KedroSession.create(
        project_path=PROJECT_ROOT, env=env, runtime_params=runtime_params or None
    ) as session:
        return session.run(pipeline_names=[name])


def env_parameters(env: str = "test") -> dict:
    """Every parameter of ``env`` as Kedro loads them (conf/base merged softly with the
    environment's files: an environment file names only the keys it changes)."""
    from kedro.config import OmegaConfigLoader

    from disease_pipeline import settings

    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), env=env, **settings.CONFIG_LOADER_ARGS)
    return loader["parameters"]


def load_catalog(env: str = "test"):
    """The project's Kedro catalog for ``env`` (datasets load from ``data/test``)."""
    bootstrap_project(PROJECT_ROOT)
    with KedroSession.create(project_path=PROJECT_ROOT, env=env) as session:
        return session.load_context().catalog


def run_python(
    script: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """``script`` run by a fresh interpreter of this environment in the project root
    (output captured, the exit code left to the caller)."""
    return subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def pytest_configure(config: pytest.Config) -> None:
    """numpy and scipy may have loaded OpenBLAS before this file (a plugin imported
    them), so the environment variable above is not enough: cap the loaded pools too."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=_BLAS_THREADS, user_api="blas")  # for the whole process
    if config.pluginmanager.hasplugin("xdist"):  # its hook exists only with the plugin
        config.pluginmanager.register(SharedSetupScheduling(), "shared_setup_scheduling")
        if _starts_workers(config) and not (TEST_DATA_ROOT / "mlflow.db").exists():
            # every KedroSession of the test environment (test_catalog too, outside the
            # data/test unit) makes kedro-mlflow create and migrate data/test/mlflow.db
            # when it is missing: two workers doing it at once fail ("table
            # _alembic_tmp_experiments already exists"), so the controller does it first
            load_catalog()


def _starts_workers(config: pytest.Config) -> bool:
    """Whether this process is a pytest-xdist controller about to start workers."""
    return not hasattr(config, "workerinput") and bool(config.getoption("numprocesses", None))


#: fixtures that put a test in a tier whatever its module says (see ``make test-fast``)
TIER_FIXTURES = {"pipeline_runner": ("slow",), "service": ("slow", "server")}


#: test modules that share a session fixture taking seconds to build, by path prefix:
#: under pytest-xdist each group runs in one worker (a module per unit otherwise, see
#: :class:`SharedSetupScheduling`), so the fixture is built once per run, not per worker
SHARED_SETUP_GROUPS = {
    "tests/edge/": "edge",  # full_predictor: predictor + rare hybrid, ~25 s
    "tests/predictor/": "predictor",  # predictor_tables and the trained bundles
    "tests/pipelines/simulate/": "simulate",  # cohort: the test-size world
    "tests/pipelines/screen/": "screen",  # screen_predictor
    # tests/rare's fitted: the rare model on the 60 bundled phenopackets
    "tests/rare/test_components.py": "rare_fitted",
    "tests/rare/test_equivalence.py": "rare_fitted",
    "tests/rare/test_model.py": "rare_fitted",
    "tests/rare/test_speed_parity.py": "rare_fitted",
}


#: what a test module or fixture says when it reads or writes the shared ``data/test``
#: folder: the pipeline runs (``pipeline_runner``, ``run_pipeline``, a module's own
#: ``run_session``) and the folder itself
DATA_TEST_USE = re.compile(
    r"pipeline_runner|run_pipeline\(|run_session\(|TEST_DATA_ROOT|\"data\" / \"test\""
)


def _functions(path: Path, fixtures_only: bool = False) -> list[tuple[str, set[str], str]]:
    """(name, parameter names, source) of every function (or fixture) of a Python file."""
    text = path.read_text(encoding="utf-8")
    return [
        (node.name, {a.arg for a in node.args.args}, ast.get_source_segment(text, node) or "")
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef)
        and not (fixtures_only and "fixture" not in ast.unparse(node.decorator_list or []))
    ]


@cache
def data_test_fixtures() -> frozenset[str]:
    """The fixtures of the tests' conftest files that use ``data/test``, directly or
    through another such fixture (``trained_store``, ``service``, ``simulated``, ...)."""
    functions = [
        fixture
        for path in (PROJECT_ROOT / "tests").rglob("conftest.py")
        for fixture in _functions(path, fixtures_only=True)
    ]
    found = {"pipeline_runner"}
    while True:
        more = {
            name
            for name, params, source in functions
            if name not in found and (params & found or DATA_TEST_USE.search(source))
        }
        if not more:
            return frozenset(found)
        found |= more


@cache
def uses_data_test(module: str) -> bool:
    """Whether the test module ``module`` (a path from the rootdir) uses ``data/test``:
    says so itself, or one of its functions takes a fixture that does."""
    path = PROJECT_ROOT / module
    if not path.is_file():
        return False
    if DATA_TEST_USE.search(path.read_text(encoding="utf-8")):
        return True
    return any(params & data_test_fixtures() for _, params, _ in _functions(path))


def shared_setup_scope(nodeid: str) -> str:
    """The pytest-xdist work unit of a test: every module that uses ``data/test`` in one
    unit (the slow tier's pipelines run there once per worker and later tests read their
    outputs, so two workers must not run them side by side), else the module's
    shared-setup group, else the module itself."""
    module = nodeid.split("::", 1)[0]
    if uses_data_test(module):
        return "data_test"
    for prefix, group in SHARED_SETUP_GROUPS.items():
        if module.startswith(prefix):
            return group
    return module


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that runs a whole pipeline is ``slow``; one that uses the real service is
    also ``server`` — even when its module forgot the marker."""
    for item in items:
        for fixture, markers in TIER_FIXTURES.items():
            if fixture in getattr(item, "fixturenames", ()):
                for marker in markers:
                    if item.get_closest_marker(marker) is None:
                        item.add_marker(getattr(pytest.mark, marker))


class SharedSetupScheduling:
    """pytest-xdist hook: ``-n N`` with ``--dist`` ``load`` (``-n auto``'s default),
    ``loadscope`` or ``loadfile`` sends work in the units of :func:`shared_setup_scope`,
    so the slow tier's ``data/test`` is never used by two workers at once. (xdist's own
    ``loadgroup`` cannot do it: it renames ``item._nodeid``, which pytest 9 no longer
    reads; ``each`` and ``worksteal`` are left as they are, for the fast tier only.)"""

    @staticmethod
    def pytest_xdist_make_scheduler(config: pytest.Config, log):
        if config.getoption("dist") not in ("load", "loadscope", "loadfile"):
            return None
        from xdist.scheduler import LoadFileScheduling

        class Scheduling(LoadFileScheduling):
            def _split_scope(self, nodeid: str) -> str:
                return shared_setup_scope(nodeid)

        return Scheduling(config, log)


@pytest.fixture(autouse=True)
def _no_mlflow_run_left_active(request: pytest.FixtureRequest) -> Iterator[None]:
    """Ends an MLflow run a test leaves active, with a warning naming the test, so the
    next test in the same process starts without one whatever the order (random order,
    pytest-xdist): a test that starts a run would otherwise fail with "Run … is already
    active". Nothing to do where mlflow was never imported."""
    yield
    mlflow = sys.modules.get("mlflow")
    if mlflow is None:
        return
    while (run := mlflow.active_run()) is not None:
        warnings.warn(
            f"{request.node.nodeid} left MLflow run {run.info.run_id} active; ended it",
            stacklevel=1,
        )
        mlflow.end_run()


_done: set[str] = set()


@pytest.fixture(scope="session")
def pipeline_runner() -> Callable[[str], None]:
    """Runs a pipeline in the test environment at most once per test session."""

    def _run(name: str) -> None:
        if name not in _done:
            run_pipeline(name)
            _done.add(name)

    return _run


@pytest.fixture(scope="session")
def test_catalog():
    """The catalog of the ``test`` environment."""
    return load_catalog()


@pytest.fixture(scope="session")
def snowflake_server() -> Iterator[dict]:
    """Connection parameters of one fakesnow server (a Snowflake emulator on DuckDB) for
    the session. ``fakesnow.server()`` can start only one server per process: it imports
    its submodule ``fakesnow.server``, which then replaces the function on the package.
    Tests keep apart by creating their own database on it."""
    fakesnow = pytest.importorskip("fakesnow")
    with fakesnow.server() as kwargs:
        yield kwargs


@pytest.fixture
def snowflake_credentials(snowflake_server) -> dict:
    """Connection parameters of a fresh database on the session's fakesnow server (tests'
    tables never collide)."""
    import uuid

    keys = ("account", "user", "password", "host", "port", "protocol")
    return {k: snowflake_server[k] for k in keys} | {
        "database": f"DB_{uuid.uuid4().hex[:8]}",
        "schema": "WAREHOUSE",
        "login_timeout": 30,
    }
