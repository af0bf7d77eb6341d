"""The SQL function registry documents every function completely (no server needed): the
server publishes these texts as DESCRIBE FUNCTION's usage, arguments and example at start-up."""

import pytest

from udfs.registry import ARGUMENTS, SQL_FUNCTIONS


@pytest.mark.parametrize("function", SQL_FUNCTIONS, ids=lambda f: f.name)
def test_every_function_has_its_usage_arguments_and_an_example(function):
    assert function.signature.startswith(function.name + "(")
    assert set(function.argument_names) <= set(ARGUMENTS), function.argument_names
    assert function.name in function.example and function.example_result
    assert function.usage.startswith(function.signature) and function.return_ddl in function.usage
    for name in function.argument_names:
        assert f"* {name} - {ARGUMENTS[name]}" in function.arguments_doc


def test_names_are_unique():
    names = [function.name for function in SQL_FUNCTIONS]
    assert len(names) == len(set(names))
