package org.emoticana.functions;

import java.util.Arrays;
import java.util.stream.Collectors;

import org.apache.spark.sql.catalyst.expressions.Expression;
import org.emoticana.sandbox.SqlSandbox;

import scala.collection.immutable.Seq;
import scala.runtime.AbstractFunction1;

/**
 * The builder of one of Emoticana's functions, which Spark calls as it analyses a call: a call with
 * a number of arguments the function does not take is an analysis error of one line. Spark checks
 * no count for Python functions, so {@code emotion()} failed in the Python worker, with its
 * traceback, once the query ran.
 */
public final class ArgumentCount extends AbstractFunction1<Seq<Expression>, Object> {
    private final String signature;
    private final int[] counts;
    private final scala.Function1<Seq<Expression>, Object> builder;

    /**
     * @param signature the function's signature as the README gives it, for the message
     * @param counts the numbers of arguments it takes, comma-separated ("1,2")
     * @param builder the builder Spark registered for it
     */
    public ArgumentCount(String signature, String counts, scala.Function1<Seq<Expression>, Object> builder) {
        this.signature = signature;
        this.counts = Arrays.stream(counts.split(",")).mapToInt(Integer::parseInt).toArray();
        this.builder = builder;
    }

    @Override
    public Object apply(Seq<Expression> arguments) {
        int given = arguments.size();
        if (Arrays.stream(counts).noneMatch(count -> count == given)) {
            String allowed = Arrays.stream(counts).mapToObj(Integer::toString).collect(Collectors.joining(", "))
                    .replaceFirst(", (\\d+)$", " or $1");
            throw SqlSandbox.refusal(signature + " takes " + allowed + " argument"
                    + (counts.length == 1 && counts[0] == 1 ? "" : "s") + ", not " + given);
        }
        return builder.apply(arguments);
    }
}
