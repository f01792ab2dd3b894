"""Looking for secrets in what a run put out."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["find_leaks"]


def find_leaks(outputs: Mapping[str, str], secrets: Mapping[str, str]) -> list[str]:
    """ "<secret> in <output>" for every secret found in any output, by their names."""
    return [
        f"{what} in {where}"
        for where, text in outputs.items()
        for what, secret in secrets.items()
        if secret and secret in text
    ]
