"""One exception tree: every class in shared/errors.py, drawn in its docstring, exported by frameio_kit."""

from __future__ import annotations

import inspect

import pytest

import frameio_kit
from shared import errors

CLASSES = [
    c
    for c in vars(errors).values()
    if inspect.isclass(c) and issubclass(c, Exception) and c.__module__ == errors.__name__
]
V0010_NAMES = [
    "FrameioKitError",
    "ConfigurationError",
    "SignatureVerificationError",
    "EventValidationError",
    "SecretResolutionError",
    "OAuthError",
    "TokenExchangeError",
    "TokenRefreshError",
]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_exception_derives_from_the_base_is_drawn_and_exported(cls: type[Exception]):
    assert issubclass(cls, errors.FrameioKitError)
    assert cls.__name__ in (errors.__doc__ or "")
    assert getattr(frameio_kit, cls.__name__) is cls
    assert cls.__name__ in frameio_kit.__all__


@pytest.mark.parametrize("name", V0010_NAMES)
def test_v0_0_10_exception_names_import(name: str):
    assert issubclass(getattr(frameio_kit, name), frameio_kit.FrameioKitError)
    assert name in frameio_kit.__all__


def test_no_exception_class_is_defined_outside_the_errors_module():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    found = []
    for package in ("shared", "ingress", "workers", "frameio_kit"):
        for path in (root / package).rglob("*.py"):
            if path == root / "shared" / "errors.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                    bases = {ast.unparse(b) for b in node.bases}
                    if any(b.endswith(("Error", "Exception")) or b in {"FrameioKitError"} for b in bases):
                        found.append(f"{path.relative_to(root)}:{node.name}")
    assert found == []


def test_v0_0_10_names_mean_what_they_meant():
    assert frameio_kit.SignatureVerificationError is frameio_kit.SignatureInvalid
    assert issubclass(frameio_kit.TokenRefreshError, frameio_kit.OAuthError)
    assert issubclass(frameio_kit.TokenExchangeError, frameio_kit.OAuthError)
    assert issubclass(frameio_kit.ConfigurationError, ValueError)
    assert issubclass(frameio_kit.EventValidationError, frameio_kit.InvalidPayload)
    error = frameio_kit.SecretResolutionError("file.ready")
    assert error.event_type == "file.ready"
    assert "file.ready" in str(error)
