from tests.realtime.conftest import hub_reader_released, streets  # noqa: F401 (fixtures used here)
