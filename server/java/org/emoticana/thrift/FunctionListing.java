package org.emoticana.thrift;

import java.sql.DatabaseMetaData;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Pattern;

import org.apache.hive.service.cli.HiveSQLException;
import org.apache.hive.service.cli.OperationState;
import org.apache.hive.service.cli.operation.GetFunctionsOperation;
import org.apache.hive.service.cli.session.HiveSession;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.FunctionIdentifier;
import org.apache.spark.sql.catalyst.catalog.SessionCatalog;
import org.apache.spark.sql.catalyst.expressions.ExpressionInfo;

import scala.Tuple2;
import scala.jdk.javaapi.CollectionConverters;

/**
 * JDBC's getFunctions over Spark's catalog. Spark's own operation lists every built-in and temporary
 * function once per database, and turns the JDBC pattern into a regular expression that its catalog
 * converts a second time ({@code emotion%} misses {@code emotion}). Here built-in and temporary
 * functions, which every schema sees, are listed once with no schema (FUNCTION_SCHEM NULL, as
 * HiveServer2 lists its built-ins); a database's own functions are listed with it when its name
 * matches the schema pattern. Patterns are JDBC's: {@code %} any characters, {@code _} one,
 * {@code \} escapes; function names match whatever their case.
 */
final class FunctionListing extends GetFunctionsOperation {
    private final SparkSession spark;
    private final String schemaPattern;
    private final String functionPattern;

    FunctionListing(SparkSession spark, HiveSession parent, String catalogName, String schemaPattern,
            String functionPattern) {
        super(parent, catalogName, schemaPattern, functionPattern);
        this.spark = spark;
        this.schemaPattern = schemaPattern;
        this.functionPattern = functionPattern;
    }

    @Override
    public void runInternal() throws HiveSQLException {
        setState(OperationState.RUNNING);
        try {
            Pattern functions = likePattern(functionPattern, true);
            Pattern schemas = likePattern(schemaPattern, false);
            SessionCatalog catalog = spark.sessionState().catalog();
            Set<String> listed = new HashSet<>();
            List<Object[]> rows = new ArrayList<>();
            for (String database : CollectionConverters.asJava(catalog.listDatabases())) {
                for (Tuple2<FunctionIdentifier, String> entry : CollectionConverters.asJava(
                        catalog.listFunctions(database, "*"))) {
                    FunctionIdentifier function = entry._1();
                    if (!functions.matcher(function.funcName()).matches()) {
                        continue;
                    }
                    if (catalog.isPersistentFunction(function)) {
                        if (schemas.matcher(database).matches()) {
                            rows.add(row(catalog, function, database));
                        }
                    } else if (listed.add(function.funcName().toLowerCase(Locale.ROOT))) {
                        rows.add(row(catalog, function, null));
                    }
                }
            }
            // JDBC's order: by FUNCTION_SCHEM (none first), then FUNCTION_NAME.
            rows.sort(Comparator.comparing((Object[] row) -> (String) row[1],
                    Comparator.nullsFirst(Comparator.<String>naturalOrder()))
                    .thenComparing(row -> (String) row[2]));
            rows.forEach(rowSet::addRow);
            setState(OperationState.FINISHED);
        } catch (Exception e) {
            setState(OperationState.ERROR);
            throw new HiveSQLException("getFunctions failed: " + e, e);
        }
    }

    private static Object[] row(SessionCatalog catalog, FunctionIdentifier function, String schema) {
        ExpressionInfo info = catalog.lookupFunctionInfo(function);
        return new Object[] {
            DEFAULT_HIVE_CATALOG, // FUNCTION_CAT
            schema, // FUNCTION_SCHEM
            function.funcName(), // FUNCTION_NAME
            "Usage: " + info.getUsage() + "\nExtended Usage:" + info.getExtended(), // REMARKS
            DatabaseMetaData.functionResultUnknown, // FUNCTION_TYPE
            info.getClassName(), // SPECIFIC_NAME
        };
    }

    /**
     * A JDBC search pattern as a regular expression; null matches everything. {@code \} escapes the
     * next character (a literal {@code %} or {@code _}).
     */
    static Pattern likePattern(String pattern, boolean ignoreCase) {
        if (pattern == null) {
            return Pattern.compile(".*", Pattern.DOTALL);
        }
        StringBuilder regex = new StringBuilder();
        for (int i = 0; i < pattern.length(); i++) {
            char c = pattern.charAt(i);
            if (c == '\\' && i + 1 < pattern.length()) {
                regex.append(Pattern.quote(String.valueOf(pattern.charAt(++i))));
            } else if (c == '%') {
                regex.append(".*");
            } else if (c == '_') {
                regex.append('.');
            } else {
                regex.append(Pattern.quote(String.valueOf(c)));
            }
        }
        int flags = Pattern.DOTALL | (ignoreCase ? Pattern.CASE_INSENSITIVE | Pattern.UNICODE_CASE : 0);
        return Pattern.compile(regex.toString(), flags);
    }
}
