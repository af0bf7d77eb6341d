package org.emoticana.sandbox;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.FunctionIdentifier;
import org.apache.spark.sql.catalyst.TableIdentifier;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.parser.ParameterContext;
import org.apache.spark.sql.catalyst.parser.ParseException;
import org.apache.spark.sql.catalyst.parser.ParserInterface;
import org.apache.spark.sql.catalyst.parser.SqlStatementSplitResult;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.StructType;

/**
 * The sandbox's variable substitution: {@code ${hivevar:NAME}} and {@code ${NAME}} become the
 * session's script variable NAME (beeline {@code --hivevar NAME=VALUE}, {@code SET hivevar:NAME=...},
 * {@code emoticana sql --hivevar}); every other reference is refused before the statement is parsed.
 *
 * <p>Spark's own substitution also reads {@code ${env:...}}, {@code ${system:...}} and any setting
 * ({@code ${spark:...}}, {@code ${hiveconf:...}}, {@code ${some.key}}), which would hand the server's
 * environment, JVM properties and passwords to any SQL user. The server turns it off
 * ({@code spark.sql.variable.substitute=false}, fixed by the sandbox) and parses through this
 * wrapper instead. Values are inserted once, never substituted again, and a statement in which
 * they make a reference is refused, so a variable cannot smuggle one in. A variable's name has no dot: dotted names are settings, not variables.
 *
 * <p>Every statement it parses then passes {@link StatementPolicy}, the allow-list, before Spark
 * analyses it, and a statement that creates a table or view gets its owner ({@link Owners#stamp}).
 */
final class SessionVariables implements ParserInterface {

    /** Spark's reference syntax ({@code ConfigReader}): an optional {@code prefix:}, then a name. */
    private static final Pattern REFERENCE = Pattern.compile("\\$\\{(?:(\\w+?):)?(\\S+?)\\}");
    private static final Pattern VARIABLE = Pattern.compile("[A-Za-z_][A-Za-z0-9_]*");
    static final String KEY_SUBSTITUTE = "spark.sql.variable.substitute";

    private final SparkSession session;
    private final ParserInterface delegate;
    private final Owners owners;
    private final StatementPolicy policy;

    SessionVariables(SparkSession session, ParserInterface delegate) {
        this.session = session;
        this.delegate = delegate;
        this.owners = new Owners(session);
        this.policy = new StatementPolicy(session);
    }

    /** The statement with its variables substituted; throws the sandbox's refusal otherwise. */
    String substitute(String sql) {
        String enabled = session.sessionState().conf().getConfString(KEY_SUBSTITUTE, "false");
        if (!"false".equals(enabled.trim().toLowerCase(Locale.ROOT))) {
            // A client may open its session with it on; Spark's substitution would then run too.
            throw SqlSandbox.refusal(KEY_SUBSTITUTE + "=" + enabled + " in this session is refused: "
                    + "it would substitute the server's environment and settings into SQL (SQL sandbox)");
        }
        if (sql == null || !sql.contains("${")) {
            return sql;
        }
        Matcher matcher = REFERENCE.matcher(sql);
        StringBuilder out = new StringBuilder();
        while (matcher.find()) {
            String prefix = matcher.group(1);
            String name = matcher.group(2);
            boolean variable = (prefix == null || prefix.equalsIgnoreCase("hivevar"))
                    && VARIABLE.matcher(name).matches();
            if (!variable) {
                throw SqlSandbox.refusal("${" + (prefix == null ? "" : prefix + ":") + name + "} is refused: "
                        + "only script variables are substituted, ${hivevar:NAME} or ${NAME} "
                        + "(beeline --hivevar NAME=VALUE); never the server's environment, "
                        + "properties or settings (SQL sandbox)");
            }
            String value = session.sessionState().conf().getConfString(name, "");
            matcher.appendReplacement(out, Matcher.quoteReplacement(value));
        }
        matcher.appendTail(out);
        // Values are not substituted again here, but Spark substitutes a setting's value when it
        // reads it: two variables pasted together ('$' and '{env:...}') must not make a reference.
        if (REFERENCE.matcher(out).find()) {
            throw SqlSandbox.refusal("the statement is refused: its script variables make a ${...} "
                    + "reference, which Spark would fill in from the server's environment or settings "
                    + "(SQL sandbox)");
        }
        return out.toString();
    }

    @Override
    public LogicalPlan parsePlan(String sqlText) throws ParseException {
        return owners.stamp(policy.check(delegate.parsePlan(substitute(sqlText))));
    }

    @Override
    public LogicalPlan parsePlanWithParameters(String sqlText, ParameterContext context) throws ParseException {
        return owners.stamp(
                policy.check(delegate.parsePlanWithParameters(substitute(sqlText), context)));
    }

    @Override
    public LogicalPlan parseQuery(String sqlText) throws ParseException {
        return policy.check(delegate.parseQuery(substitute(sqlText)));
    }

    @Override
    public Expression parseExpression(String sqlText) throws ParseException {
        return delegate.parseExpression(substitute(sqlText));
    }

    @Override
    public TableIdentifier parseTableIdentifier(String sqlText) throws ParseException {
        return delegate.parseTableIdentifier(sqlText);
    }

    @Override
    public FunctionIdentifier parseFunctionIdentifier(String sqlText) throws ParseException {
        return delegate.parseFunctionIdentifier(sqlText);
    }

    @Override
    public scala.collection.immutable.Seq<String> parseMultipartIdentifier(String sqlText) throws ParseException {
        return delegate.parseMultipartIdentifier(sqlText);
    }

    @Override
    public StructType parseRoutineParam(String sqlText) throws ParseException {
        return delegate.parseRoutineParam(sqlText);
    }

    @Override
    public SqlStatementSplitResult splitStatements(String sqlText) {
        return delegate.splitStatements(sqlText);
    }

    @Override
    public StructType parseTableSchema(String sqlText) throws ParseException {
        return delegate.parseTableSchema(sqlText);
    }

    @Override
    public DataType parseDataType(String sqlText) throws ParseException {
        return delegate.parseDataType(sqlText);
    }
}
