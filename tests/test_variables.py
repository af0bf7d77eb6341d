"""Variable substitution without secrets: script variables are substituted, nothing else is.

Spark's own substitution would read ``${env:...}``, ``${system:...}`` and every setting into SQL;
the sandbox refuses every reference but ``${hivevar:NAME}`` and ``${NAME}``, before parsing.
"""

import os
import subprocess
from pathlib import Path

import pyspark
import pytest

pytestmark = pytest.mark.slow

REFUSED = "only script variables are substituted"


def message(exc: Exception) -> str:
    return str(exc)


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT '${env:PATH}'",
        "SELECT '${env:EMOTICANA_METASTORE_PASSWORD}'",
        "SELECT '${system:user.name}'",
        "SELECT '${system:java.class.path}'",
        "SELECT '${spark:spark.app.name}'",
        "SELECT '${sparkconf:spark.sql.warehouse.dir}'",
        "SELECT '${hiveconf:hive.server2.keystore.password}'",
        "SELECT '${spark.hadoop.hive.server2.keystore.password}'",
        "SELECT '${spark.sql.warehouse.dir}'",
        "SELECT length('${ENV:HOME}')",
        "SET hivevar:copied=${env:PATH}",
        "CREATE OR REPLACE TEMPORARY VIEW leak AS SELECT '${system:user.home}' AS home",
        "SELECT 1 -- ${env:HOME} in a comment is still refused",
    ],
)
def test_references_to_the_server_are_refused(cursor, statement):
    with pytest.raises(Exception) as refused:
        cursor.execute(statement)
    text = message(refused.value)
    assert REFUSED in text and "(SQL sandbox)" in text
    assert os.environ.get("HOME", "/root") not in text.replace("${env:HOME}", "")


def test_script_variables_are_substituted_once(cursor):
    cursor.execute("SET hivevar:clip=abc")
    cursor.execute("SELECT '${hivevar:clip}', '${clip}', '${hivevar:unset_variable}'")
    assert cursor.fetchall() == [("abc", "abc", "")]
    # A value is inserted as text, never substituted again; a reference that values spell
    # together is refused, as Spark fills in a setting's ${...} each time it reads the setting.
    cursor.execute("SET hivevar:dollar=$")
    cursor.execute("SET hivevar:rest={env:PATH}")
    for statement in (
        "SELECT '${hivevar:dollar}{env:PATH}'",
        "SET spark.sql.session.timeZone=${dollar}${rest}",
    ):
        with pytest.raises(Exception) as refused:
            cursor.execute(statement)
        assert "its script variables make a ${...} reference" in message(refused.value)
        assert os.environ["PATH"] not in message(refused.value)
    cursor.execute("SET spark.sql.session.timeZone")
    assert cursor.fetchall()[0][1] != "${env:PATH}"


def test_a_setting_value_may_not_hold_a_reference(cursor):
    """Spark substitutes ${...} in a setting's value when it reads it: a SET whose value holds ${
    (here with a space, which this parser's pattern does not take for a reference) is refused."""
    with pytest.raises(Exception, match=r"a value may not contain \$\{"):
        cursor.execute("SET spark.sql.session.timeZone=UTC${ x}")


def test_the_substitution_setting_cannot_be_turned_back_on(server, cursor):
    with pytest.raises(Exception, match="SET spark.sql.variable.substitute is refused"):
        cursor.execute("SET spark.sql.variable.substitute=true")
    # Settings sent when the session opens (a JDBC URL's ?key=value, PyHive's configuration):
    # PyHive's first statement (USE default) is already refused, before any reference is read.
    with pytest.raises(Exception, match="spark.sql.variable.substitute=true in this session"):
        connection = server.connect(
            configuration={"set:hiveconf:spark.sql.variable.substitute": "true"}
        )
        connection.cursor().execute("SELECT '${env:PATH}'")


def test_beeline_hivevar_still_works(server):
    beeline = Path(pyspark.__file__).parent / "bin" / "beeline"
    result = subprocess.run(
        [
            str(beeline),
            "-u",
            f"jdbc:hive2://127.0.0.1:{server.port}/default",
            "-n",
            "tester",
            "--hivevar",
            "greeting=hello",
            "--silent=true",
            "--outputformat=csv2",
            "-e",
            "SELECT '${hivevar:greeting}' AS g;",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "hello" in result.stdout.splitlines()
