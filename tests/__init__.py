import sys

if "pytest" in sys.modules:
    import pytest

    # The asserts of the shared helpers explain their failures as those of the test modules do.
    pytest.register_assert_rewrite("tests.helpers")
