"""petl's tests, a package so that every folder imports the shared helpers by one name
(`from tests.tiny_models import ...`, `from tests.cl.cl_data import ...`) and same-named
modules (conftest.py) of different folders do not clash.

avalanche-lib also installs a top-level `tests` package; this one wins because pytest puts
the repository root first on sys.path, and workers launched as subprocesses get the root in
PYTHONPATH (see tests/distributed/test_two_processes.py `_env`)."""
