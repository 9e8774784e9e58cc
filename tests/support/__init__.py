"""Helpers shared by every test folder: prerequisite checks (prereq), the
installed stock kernel (kernel).  Test modules import them as
`from tests.support.prereq import need`; pytest puts the repository root on
sys.path (pyproject.toml: pythonpath)."""
