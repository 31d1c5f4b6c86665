"""The FastAPI reimplementation of the shop API (`/v2`): async, strict, problem details."""

from v2_fastapi.app import create_app
from v2_fastapi.problems import install_problem_handlers

__all__ = ["create_app", "install_problem_handlers"]
