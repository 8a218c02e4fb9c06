from __future__ import annotations

import pytest

from pbxwatch.core.numbers import is_anonymous, mask, normalise


@pytest.mark.parametrize(
    "raw", ["0701234567", "+46701234567", "0046701234567", "070-123 45 67", "+46 70 123 45 67"]
)
def test_one_swedish_mobile_number_in_many_spellings(raw: str) -> None:
    assert normalise(raw) == "+46701234567"


def test_outbound_prefix_is_stripped() -> None:
    assert normalise("00701234567", outbound_prefix="0") == "+46701234567"
    assert normalise("9,0701234567", outbound_prefix="9") == "+46701234567"


def test_short_numbers_and_anonymous() -> None:
    assert normalise("1001") == "1001"
    assert normalise("*97") == "*97"
    for raw in (None, "", "<unknown>", "anonymous", "Restricted"):
        assert is_anonymous(raw)
        assert normalise(raw) is None


def test_other_country_code() -> None:
    assert normalise("0401234567", country_code="358") == "+358401234567"


def test_mask_hides_the_middle() -> None:
    assert mask("+46701234567") == "+4670*****67"
    assert "1234" not in mask("+46701234567")
    assert mask(None) == "-"
    assert mask("1001") == "1001"
