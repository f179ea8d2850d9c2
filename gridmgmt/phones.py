"""Phone numbers shown to people who should recognise a caller but not be able to copy the number."""


def phone_mask(phone: str | None) -> str:
    """138****5678. At most the first three and last four characters stay; a shorter number keeps fewer (a
    7-digit landline becomes 5****23, a 4-digit extension ****), so no number is ever shown whole."""
    digits = (phone or "").strip()
    if len(digits) <= 4:
        return "*" * len(digits)
    if len(digits) < 8:
        return digits[:1] + "*" * (len(digits) - 3) + digits[-2:]
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
