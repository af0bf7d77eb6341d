"""Split SQL scripts into statements; the one splitter used at start-up and by ``emoticana sql``."""

from __future__ import annotations

import re
from pathlib import Path

import sqlparse

#: A reference as the server's sandbox finds it (server/java/.../SessionVariables.java): an
#: optional prefix, then a name; a script variable is ``${hivevar:NAME}`` or ``${NAME}`` (any case
#: of the prefix), as beeline and ``emoticana sql --hivevar`` fill it.
_REFERENCE = re.compile(r"\$\{(?:(\w+?):)?(\S+?)\}")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def split_statements(text: str) -> list[str]:
    """Statements of a script, without their trailing semicolons.

    sqlparse keeps semicolons inside string literals and comments where they
    are; statements that hold only comments are dropped.
    """
    statements = []
    for raw in sqlparse.split(text):
        code = sqlparse.format(raw, strip_comments=True).strip().rstrip(";").strip()
        if code:
            statements.append(raw.strip().rstrip(";").rstrip())
    return statements


def returns_rows(statement: str) -> bool:
    """Whether a statement is a query, whose header is worth printing even with no rows."""
    return sqlparse.parse(statement)[0].get_type() == "SELECT"


def script_variables(statements: list[str]) -> list[str]:
    """The script variables the statements use, in order of use: wherever the server substitutes
    them, so in comments and string literals too (a variable it is not given becomes empty)."""
    names: list[str] = []
    for statement in statements:
        for prefix, name in _REFERENCE.findall(statement):
            variable = prefix.lower() in ("", "hivevar") and _VARIABLE.fullmatch(name)
            if variable and name not in names:
                names.append(name)
    return names


def read_script(path: Path) -> list[str]:
    return split_statements(Path(path).read_text(encoding="utf-8"))
