package org.emoticana.sandbox;

import java.util.IdentityHashMap;

import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.SubqueryExpression;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;

import scala.Option;
import scala.Tuple2;
import scala.jdk.javaapi.CollectionConverters;

/**
 * One traversal of a plan for both of the sandbox's checks, the parsed statement's
 * ({@link StatementPolicy}) and the analysed plan's ({@link SqlSandbox}): every plan node, its
 * expressions and their subqueries, its inner children, and the plans, expressions and other
 * values held in fields rather than as children (a CTAS's query, a table spec, a catalog table,
 * options), each visited once however often it is referenced.
 */
abstract class PlanWalk {
    /** Fields are followed this deep into nested options, tuples and collections. */
    private static final int MAX_DEPTH = 6;
    private final IdentityHashMap<Object, Boolean> seen = new IdentityHashMap<>();

    /** Checks one plan node, before its fields, expressions and children. */
    abstract void visit(LogicalPlan node);

    /** Checks one expression, before its subquery, fields and children. */
    abstract void visit(Expression expression);

    /**
     * Checks a value held in a field that is neither a plan nor an expression; true when the walk
     * need not look into it further.
     */
    boolean visitValue(Object value, int depth) {
        return false;
    }

    final void plan(LogicalPlan node) {
        if (node == null || seen.put(node, Boolean.TRUE) != null) {
            return;
        }
        visit(node);
        fields(node, 0);
        for (Expression expression : CollectionConverters.asJava(node.expressions())) {
            expression(expression);
        }
        for (LogicalPlan child : CollectionConverters.asJava(node.children())) {
            plan(child);
        }
        for (Object inner : CollectionConverters.asJava(node.innerChildren())) {
            if (inner instanceof LogicalPlan) {
                plan((LogicalPlan) inner);
            }
        }
    }

    final void expression(Expression expression) {
        if (expression == null || seen.put(expression, Boolean.TRUE) != null) {
            return;
        }
        visit(expression);
        if (expression instanceof SubqueryExpression) {
            plan(((SubqueryExpression) expression).plan());
        }
        fields(expression, 0);
        for (Expression child : CollectionConverters.asJava(expression.children())) {
            expression(child);
        }
    }

    final void fields(Object holder, int depth) {
        if (!(holder instanceof scala.Product)) {
            return;
        }
        scala.collection.Iterator<Object> values = ((scala.Product) holder).productIterator();
        while (values.hasNext()) {
            value(values.next(), depth + 1);
        }
    }

    @SuppressWarnings("unchecked")
    final void value(Object value, int depth) {
        if (value == null || depth > MAX_DEPTH) {
            return;
        }
        if (value instanceof LogicalPlan) {
            plan((LogicalPlan) value);
        } else if (value instanceof Expression) {
            expression((Expression) value);
        } else if (visitValue(value, depth)) {
            return;
        } else if (value instanceof Option) {
            Option<Object> option = (Option<Object>) value;
            if (option.isDefined()) {
                value(option.get(), depth + 1);
            }
        } else if (value instanceof Tuple2) {
            value(((Tuple2<Object, Object>) value)._1(), depth + 1);
            value(((Tuple2<Object, Object>) value)._2(), depth + 1);
        } else if (value instanceof scala.collection.Iterable) {
            scala.collection.Iterator<Object> items = ((scala.collection.Iterable<Object>) value).iterator();
            while (items.hasNext()) {
                value(items.next(), depth + 1);
            }
        }
    }
}
