"""Phone masking: one rule for staff screens and the 12345 callback."""

import pytest

from gridmgmt.phones import phone_mask


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812345678", "138****5678"),
        (" 13812345678 ", "138****5678"),
        ("021-58881234", "021*****1234"),
        ("5888123", "5****23"),  # a 7-digit landline: most digits hidden, not all shown
        ("58881234", "588*1234"),
        ("12345", "1**45"),
        ("1234", "****"),
        ("110", "***"),
        ("", ""),
        (None, ""),
    ],
)
def test_phone_mask(phone, masked):
    assert phone_mask(phone) == masked


@pytest.mark.parametrize("phone", ["5888123", "13812345678", "021-58881234", "12345", "+8613812345678"])
def test_phone_mask_keeps_the_length_and_never_shows_every_digit(phone):
    masked = phone_mask(phone)
    assert len(masked) == len(phone)
    assert masked.count("*") >= 2
