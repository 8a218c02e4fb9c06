"""The demo's summary speaks Swedish first, English for another locale (POSIX order)."""

from __future__ import annotations

import pytest

from pbxwatch.demo import WORDS, terminal_lang


@pytest.mark.parametrize(
    ("env", "lang"),
    [
        ({}, "sv"),
        ({"LANG": "C.UTF-8"}, "sv"),
        ({"LANG": "POSIX"}, "sv"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LANG": "de_DE.UTF-8"}, "en"),
        ({"LANG": "sv_SE.UTF-8"}, "sv"),
        ({"LANG": "sv_SE.UTF-8", "LC_MESSAGES": "en_GB.UTF-8"}, "en"),
        ({"LANG": "en_US.UTF-8", "LC_ALL": "sv_FI.UTF-8"}, "sv"),
        ({"LANG": "sv_SE.UTF-8", "LC_ALL": ""}, "sv"),  # empty is unset
    ],
)
def test_the_locale_decides(env: dict[str, str], lang: str) -> None:
    assert terminal_lang(env) == lang


def test_english_closing_line_says_calls_finished() -> None:
    """What a script greps for at the end of a demo."""
    line = WORDS["en"]["stopped"].format(events=10, calls=2)
    assert line == "demo stopped: 10 events simulated, 2 calls finished"
