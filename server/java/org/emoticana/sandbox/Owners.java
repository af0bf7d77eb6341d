package org.emoticana.sandbox;

import java.util.Arrays;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Collectors;

import org.apache.spark.SparkConf;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.CurrentUserContext$;
import org.apache.spark.sql.catalyst.FunctionIdentifier;
import org.apache.spark.sql.catalyst.TableIdentifier;
import org.apache.spark.sql.catalyst.analysis.ResolvedIdentifier;
import org.apache.spark.sql.catalyst.analysis.ResolvedNamespace;
import org.apache.spark.sql.catalyst.analysis.ResolvedPersistentView;
import org.apache.spark.sql.catalyst.analysis.ResolvedTable;
import org.apache.spark.sql.catalyst.catalog.CatalogDatabase;
import org.apache.spark.sql.catalyst.catalog.CatalogTable;
import org.apache.spark.sql.catalyst.catalog.CatalogTableType;
import org.apache.spark.sql.catalyst.catalog.SessionCatalog;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.PythonUDF;
import org.apache.spark.sql.catalyst.plans.logical.DropNamespace;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.catalyst.plans.logical.SetNamespaceLocation;
import org.apache.spark.sql.catalyst.plans.logical.SetNamespaceProperties;
import org.apache.spark.sql.catalyst.plans.logical.UnresolvedTableSpec;
import org.apache.spark.sql.catalyst.trees.TreeNode;
import org.apache.spark.sql.connector.catalog.Identifier;
import org.apache.spark.sql.execution.command.AlterDatabasePropertiesCommand;
import org.apache.spark.sql.execution.command.AlterDatabaseSetLocationCommand;
import org.apache.spark.sql.execution.command.CreateSQLFunctionCommand;
import org.apache.spark.sql.execution.command.CreateViewCommand;
import org.apache.spark.sql.execution.command.DropFunctionCommand;
import org.apache.spark.sql.execution.command.DropDatabaseCommand;
import org.apache.spark.sql.execution.datasources.InsertIntoHadoopFsRelationCommand;
import org.apache.spark.sql.hive.execution.InsertIntoHiveTable;

import scala.Option;
import scala.jdk.javaapi.CollectionConverters;

/**
 * Who may change a table or view, with passwords on: its owner, the user who created it, or an
 * administrator. Everyone may read.
 *
 * <p>Spark's own {@code CatalogTable.owner} is the server's operating-system user (HiveServer2
 * runs without impersonation), so the owner is a table property, {@link #PROPERTY}, that the
 * parser adds to {@code CREATE TABLE/VIEW} as the logged-in user wrote it ({@link #stamp}); SQL
 * may not set or unset it ({@link StatementPolicy}). The check rule then compares the stored
 * property of every table or view a command drops, writes or alters with the current user
 * ({@link #checkChange}). A database records its owner in its properties the same way and only
 * its owner alters or drops it; persistent SQL functions, for which the catalog keeps no
 * properties, are administrators' to create, replace and drop. A table or view without the property (made before, with passwords off
 * or by the server's start-up SQL) may be changed by administrators only. Switching the
 * server-wide model, {@code activate_model}, is an administrator's action too.
 *
 * <p>The current user is Spark's {@code current_user()}: the Thrift server sets it for the
 * thread that parses, analyses and runs each statement. The server's own session (start-up SQL),
 * which no client reaches, has none and acts as an administrator; any other session without one
 * owns nothing.
 */
final class Owners {

    /** true with passwords on: owners are recorded and checked. */
    static final String KEY_OWNERS = "spark.emoticana.sql.owners";
    /** Administrators' user names, comma-separated. */
    static final String KEY_ADMINS = "spark.emoticana.sql.admins";
    /** The table property that names a table's or view's owner. */
    static final String PROPERTY = "emoticana.owner";
    /** Python UDFs that change what every session sees, by their registered SQL name. */
    static final Set<String> ADMIN_FUNCTIONS = Set.of("activate_model");

    /** Parsed statements that create a persistent table or view; their properties get the owner. */
    private static final Set<String> CREATES = Set.of(
            "CreateTable", "CreateTableAsSelect", "ReplaceTable", "ReplaceTableAsSelect", "CreateTableLike",
            "CreateView", "CreateNamespace");

    private static final String SANDBOX = " (SQL sandbox)";

    private final SparkSession session;
    private final boolean on;
    private final Set<String> admins;

    Owners(SparkSession session) {
        this.session = session;
        SparkConf conf = session.sparkContext().getConf();
        this.on = conf.getBoolean(KEY_OWNERS, false);
        this.admins = Arrays.stream(conf.get(KEY_ADMINS, "").split(","))
                .map(String::trim).filter(name -> !name.isEmpty()).collect(Collectors.toUnmodifiableSet());
    }

    /** The logged-in user; null in the server's own session. */
    private String user() {
        String user = CurrentUserContext$.MODULE$.CURRENT_USER().get();
        if (user != null) {
            return user;
        }
        Option<SparkSession> root = SparkSession.getDefaultSession();
        // Any other session without a user is no one: it owns nothing and administers nothing.
        return root.isDefined() && root.get() == session ? null : "";
    }

    private boolean administrator(String user) {
        return user == null || admins.contains(user);
    }

    /** The parsed statement, with the current user as owner when it creates a table or view. */
    LogicalPlan stamp(LogicalPlan plan) {
        String user = on ? CurrentUserContext$.MODULE$.CURRENT_USER().get() : null;
        if (user == null || !CREATES.contains(plan.getClass().getSimpleName())) {
            return plan;
        }
        return withOwner(plan, user);
    }

    /** A copy of a node whose {@code properties} field, or table spec's, names the owner. */
    @SuppressWarnings("unchecked")
    private static <T extends TreeNode<?>> T withOwner(T node, String user) {
        scala.Product product = (scala.Product) node;
        Object[] args = new Object[product.productArity()];
        boolean changed = false;
        for (int i = 0; i < args.length; i++) {
            Object value = product.productElement(i);
            if (value instanceof UnresolvedTableSpec) {
                value = withOwner((UnresolvedTableSpec) value, user);
                changed = true;
            } else if (product.productElementName(i).equals("properties")
                    && value instanceof scala.collection.immutable.Map) {
                value = ((scala.collection.immutable.Map<String, String>) value).updated(PROPERTY, user);
                changed = true;
            }
            args[i] = value;
        }
        return changed ? (T) node.makeCopy(args) : node;
    }

    /**
     * Refuses the analysed command if it changes a table, view, database or persistent function the
     * current user may not change.
     */
    void checkChange(LogicalPlan node) {
        if (!on) {
            return;
        }
        String name = node.getClass().getSimpleName();
        String action = action(node, name);
        if (action == null) {
            return;
        }
        String user = user();
        if (administrator(user)) {
            return;
        }
        if (action.startsWith("persistent function")) {
            // Persistent functions are shared by every user and the catalog records no owner for
            // them, so, as HiveServer2's SQL-standard authorization does, only administrators
            // create, replace or drop them; a temporary function is the user's own.
            throw SqlSandbox.refusal(action.substring("persistent function ".length()) + " is refused: persistent "
                    + "functions are shared by every user, so only an administrator may create, replace or drop "
                    + "one; CREATE TEMPORARY FUNCTION makes one for this session" + SANDBOX);
        }
        String database = database(node);
        if (database != null) {
            SessionCatalog catalog = session.sessionState().catalog();
            if (!catalog.databaseExists(database)) {
                return;
            }
            ownedDatabase(user, action, database);
            if (cascade(node)) {
                // CASCADE drops every table and view of the database, so each must be the user's.
                for (TableIdentifier table : CollectionConverters.asJava(catalog.listTables(database))) {
                    owned(user, "DROP DATABASE " + database + " CASCADE", table);
                }
            }
            return;
        }
        TableIdentifier target = target(node);
        if (target != null) {
            owned(user, action, target);
        }
    }

    /** The database a database command changes; null for any other command. */
    private static String database(LogicalPlan node) {
        if (node instanceof DropNamespace) {
            return namespace(((DropNamespace) node).namespace());
        }
        if (node instanceof DropDatabaseCommand) {
            return ((DropDatabaseCommand) node).databaseName();
        }
        if (node instanceof SetNamespaceProperties) {
            return namespace(((SetNamespaceProperties) node).namespace());
        }
        if (node instanceof SetNamespaceLocation) {
            return namespace(((SetNamespaceLocation) node).namespace());
        }
        if (node instanceof AlterDatabasePropertiesCommand) {
            return ((AlterDatabasePropertiesCommand) node).databaseName();
        }
        if (node instanceof AlterDatabaseSetLocationCommand) {
            return ((AlterDatabaseSetLocationCommand) node).databaseName();
        }
        return null;
    }

    private static boolean cascade(LogicalPlan node) {
        return node instanceof DropNamespace ? ((DropNamespace) node).cascade()
                : node instanceof DropDatabaseCommand && ((DropDatabaseCommand) node).cascade();
    }

    /** Refuses unless the database is the user's (its properties name the owner, as a table's do). */
    private void ownedDatabase(String user, String action, String database) {
        CatalogDatabase metadata;
        try {
            metadata = session.sessionState().catalog().getDatabaseMetadata(database);
        } catch (Exception e) {
            return;  // dropped meanwhile: the command fails on its own
        }
        Option<String> owner = metadata.properties().get(PROPERTY);
        if (owner.isDefined() && owner.get().equals(user)) {
            return;
        }
        String whose = owner.isDefined()
                ? "it belongs to " + owner.get() + "; only its owner or an administrator may change it"
                : "it has no recorded owner (made before owners were recorded, or by the server); only an "
                        + "administrator may change it";
        throw SqlSandbox.refusal(action + " " + database + " is refused: " + whose + SANDBOX);
    }

    /** Refuses a call of a function only administrators may call. */
    void checkFunction(Expression expression) {
        if (!on || !(expression instanceof PythonUDF)) {
            return;
        }
        String function = ((PythonUDF) expression).name().toLowerCase(Locale.ROOT);
        String user = user();
        if (ADMIN_FUNCTIONS.contains(function) && !administrator(user)) {
            throw SqlSandbox.refusal(function + "(...) is refused: it changes the model of every session, which "
                    + "only an administrator may do (EMOTICANA_ADMINS); name a model per query instead, "
                    + "emotion(x, 'name/version')" + SANDBOX);
        }
    }

    /** What the command does to an existing table or view, in words; null if it changes none. */
    private static String action(LogicalPlan node, String name) {
        if (name.equals("DropTable") || name.equals("DropTableCommand")) {
            return "DROP";
        }
        if (node instanceof InsertIntoHadoopFsRelationCommand) {
            return ((InsertIntoHadoopFsRelationCommand) node).mode() == SaveMode.Overwrite
                    ? "INSERT OVERWRITE" : "INSERT INTO";
        }
        if (node instanceof InsertIntoHiveTable) {
            return ((InsertIntoHiveTable) node).overwrite() ? "INSERT OVERWRITE" : "INSERT INTO";
        }
        if (name.equals("TruncateTableCommand")) {
            return "TRUNCATE";
        }
        if (name.equals("AnalyzeTableCommand") || name.equals("AnalyzeColumnCommand")
                || name.equals("AnalyzePartitionCommand")) {
            return "ANALYZE";  // statistics the optimiser trusts are the table's, written into its metadata
        }
        if (node instanceof CreateViewCommand) {
            CreateViewCommand view = (CreateViewCommand) node;
            return view.replace() && view.viewType().toString().equals("PersistedView") ? "CREATE OR REPLACE" : null;
        }
        if (node instanceof DropNamespace || node instanceof DropDatabaseCommand) {
            return "DROP DATABASE";
        }
        if (node instanceof SetNamespaceProperties || node instanceof SetNamespaceLocation
                || node instanceof AlterDatabasePropertiesCommand || node instanceof AlterDatabaseSetLocationCommand) {
            return "ALTER DATABASE";
        }
        if (node instanceof CreateSQLFunctionCommand && !((CreateSQLFunctionCommand) node).isTemp()) {
            CreateSQLFunctionCommand create = (CreateSQLFunctionCommand) node;
            return "persistent function " + (create.replace() ? "CREATE OR REPLACE FUNCTION " : "CREATE FUNCTION ")
                    + functionName(create.name());
        }
        if (node instanceof DropFunctionCommand && !((DropFunctionCommand) node).isTemp()) {
            return "persistent function DROP FUNCTION " + functionName(((DropFunctionCommand) node).identifier());
        }
        if ((name.startsWith("AlterTable") || name.startsWith("AlterView")) && name.endsWith("Command")
                || name.equals("RepairTableCommand") || name.equals("CommentOnTable")) {
            return "ALTER";
        }
        return null;
    }

    /** database.function, as users write it (without the catalog). */
    private static String functionName(FunctionIdentifier function) {
        return function.database().isDefined() ? function.database().get() + "." + function.funcName()
                : function.funcName();
    }

    /** The table or view a command names: its first identifier or catalog table, or its resolved child. */
    private static TableIdentifier target(LogicalPlan node) {
        scala.collection.Iterator<Object> values = ((scala.Product) node).productIterator();
        while (values.hasNext()) {
            TableIdentifier found = identifier(values.next());
            if (found != null) {
                return found;
            }
        }
        for (LogicalPlan child : CollectionConverters.asJava(node.children())) {
            TableIdentifier found = identifier(child);
            if (found != null) {
                return found;
            }
        }
        return null;
    }

    @SuppressWarnings("unchecked")
    private static TableIdentifier identifier(Object value) {
        if (value instanceof TableIdentifier) {
            return (TableIdentifier) value;
        }
        if (value instanceof CatalogTable) {
            return ((CatalogTable) value).identifier();
        }
        if (value instanceof Option && ((Option<Object>) value).isDefined()) {
            Object inner = ((Option<Object>) value).get();
            return inner instanceof CatalogTable ? ((CatalogTable) inner).identifier() : null;
        }
        if (value instanceof ResolvedIdentifier) {
            return v1(((ResolvedIdentifier) value).identifier());
        }
        if (value instanceof ResolvedTable) {
            return v1(((ResolvedTable) value).identifier());
        }
        if (value instanceof ResolvedPersistentView) {
            return v1(((ResolvedPersistentView) value).identifier());
        }
        return null;
    }

    private static TableIdentifier v1(Identifier identifier) {
        String[] namespace = identifier.namespace();
        return new TableIdentifier(identifier.name(),
                namespace.length == 0 ? Option.empty() : Option.apply(namespace[namespace.length - 1]));
    }

    private static String namespace(LogicalPlan plan) {
        if (plan instanceof ResolvedNamespace) {
            scala.collection.immutable.Seq<String> parts = ((ResolvedNamespace) plan).namespace();
            return parts.isEmpty() ? null : parts.last();
        }
        return null;
    }

    /** Refuses unless the stored table or view exists no more, is temporary, or is the user's. */
    private void owned(String user, String action, TableIdentifier identifier) {
        SessionCatalog catalog = session.sessionState().catalog();
        if (catalog.isTempView(identifier) || !catalog.tableExists(identifier)) {
            return;
        }
        CatalogTable table;
        try {
            table = catalog.getTableRawMetadata(identifier);
        } catch (Exception e) {
            return;  // dropped meanwhile: the command fails on its own
        }
        Option<String> owner = table.properties().get(PROPERTY);
        if (owner.isDefined() && owner.get().equals(user)) {
            return;
        }
        String kind = table.tableType() == CatalogTableType.VIEW() ? "VIEW" : "TABLE";
        String name = table.database() + "." + table.identifier().table();
        String statement = action.startsWith("DROP DATABASE")
                ? action + " (" + kind.toLowerCase(Locale.ROOT) + " " + name + ")"
                : action.startsWith("INSERT") ? action + " " + name : action + " " + kind + " " + name;
        String whose = owner.isDefined()
                ? "it belongs to " + owner.get() + "; only its owner or an administrator may change it"
                : "it has no recorded owner (made before owners were recorded, or by the server); only an "
                        + "administrator may change it";
        throw SqlSandbox.refusal(statement + " is refused: " + whose + SANDBOX);
    }
}
