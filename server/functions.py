"""Make Emoticana's SQL functions visible in every Thrift session, while sessions stay isolated.

The Thrift server opens each JDBC connection with ``SparkSession.newSession()``,
whose function registry is a fresh clone of Spark's JVM-wide built-in
registry: Python UDFs registered in the server's own session would be
invisible there.  So each UDF is registered once in the root session (which
builds the JVM-side function) and its builder is then published into the
built-in registry.  Every later session starts with the functions, while its
current database, SET values and temporary views remain its own.  Because
they are built-ins, persistent views may call them, and those views keep
working after a restart.
"""

from __future__ import annotations

from pyspark.sql import SparkSession

from udfs.registry import SQL_FUNCTIONS, SqlFunction, UdfContext


def _identifier(jvm, name: str, namespace: str):
    some = jvm.scala.Some
    return jvm.org.apache.spark.sql.catalyst.FunctionIdentifier(
        name, some(namespace), some("system")
    )


def publish_as_builtin(spark: SparkSession, function: SqlFunction) -> None:
    """Copy the session function into Spark's built-in (table) function registry, with its
    documentation: ``DESCRIBE FUNCTION [EXTENDED]`` and JDBC's ``getFunctions`` read it there."""
    jvm = spark._jvm
    name, table = function.name, function.kind == "table"
    state = spark._jsparkSession.sessionState()
    session_registry = state.tableFunctionRegistry() if table else state.functionRegistry()
    session_id = _identifier(jvm, name, "session")
    registered = session_registry.lookupFunction(session_id).get()
    info = jvm.org.apache.spark.sql.catalyst.expressions.ExpressionInfo(
        registered.getClassName(),
        None,  # a built-in's database
        name,
        function.usage,
        function.arguments_doc,
        function.examples_doc,
        "",  # note
        "",  # group
        "",  # since
        "",  # deprecated
        "python_udtf" if table else "python_udf",
    )
    # Spark counts no arguments for a Python function: a wrong count failed in the worker.
    builder = jvm.org.emoticana.functions.ArgumentCount(
        function.signature,
        ",".join(str(count) for count in function.argument_counts),
        session_registry.lookupFunctionBuilder(session_id).get(),
    )
    registry_object = "TableFunctionRegistry$" if table else "FunctionRegistry$"
    builtin = (
        getattr(jvm.org.apache.spark.sql.catalyst.analysis, registry_object)
        .__getattr__("MODULE$")
        .builtin()
    )
    builtin.registerFunction(_identifier(jvm, name, "builtin"), info, builder)


def register_sql_functions(spark: SparkSession, context: UdfContext) -> list[str]:
    """Register every function of the registry for all current and future sessions."""
    names = []
    for function in SQL_FUNCTIONS:
        table = function.kind == "table"
        registry = spark.udtf if table else spark.udf
        registry.register(function.name, function.factory(context))
        publish_as_builtin(spark, function)
        names.append(function.name)
    return names
