package org.emoticana.sandbox;

import java.net.URI;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

import org.apache.hadoop.fs.FileSystem;
import org.apache.spark.SparkConf;
import org.apache.spark.QueryContext;
import org.apache.spark.sql.AnalysisException;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.SparkSessionExtensions;
import org.apache.spark.sql.catalyst.catalog.CatalogStorageFormat;
import org.apache.spark.sql.catalyst.TableIdentifier;
import org.apache.spark.sql.catalyst.catalog.CatalogTable;
import org.apache.spark.sql.catalyst.catalog.CatalogTableType;
import org.apache.spark.sql.catalyst.expressions.CallMethodViaReflection;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.SchemaOfXml;
import org.apache.spark.sql.catalyst.expressions.XmlToStructs;
import org.apache.spark.sql.catalyst.expressions.xml.XPathExtract;
import org.apache.spark.sql.catalyst.parser.ParserInterface;
import org.apache.spark.sql.catalyst.plans.logical.CreateNamespace;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.catalyst.plans.logical.SetNamespaceLocation;
import org.apache.spark.sql.catalyst.plans.logical.SetNamespaceProperties;
import org.apache.spark.sql.catalyst.trees.TreeNode;
import org.apache.spark.sql.execution.command.AlterDatabaseSetLocationCommand;
import org.apache.spark.sql.execution.command.AlterTableAddPartitionCommand;
import org.apache.spark.sql.execution.command.AlterTableSetLocationCommand;
import org.apache.spark.sql.execution.command.CreateDataSourceTableAsSelectCommand;
import org.apache.spark.sql.execution.command.CreateDatabaseCommand;
import org.apache.spark.sql.execution.command.CreateTableCommand;
import org.apache.spark.sql.execution.command.CreateTableLikeCommand;
import org.apache.spark.sql.execution.datasources.CreateTempViewUsing;
import org.apache.spark.sql.execution.datasources.FileIndex;
import org.apache.spark.sql.execution.datasources.HadoopFsRelation;
import org.apache.spark.sql.execution.datasources.InsertIntoHadoopFsRelationCommand;
import org.apache.spark.sql.execution.datasources.v2.FileTable;
import org.apache.spark.sql.hive.execution.CreateHiveTableAsSelectCommand;
import org.apache.spark.sql.hive.execution.InsertIntoHiveTable;
import org.apache.spark.sql.internal.SQLConf;

import com.fasterxml.jackson.databind.ObjectMapper;

import scala.Option;
import scala.Tuple2;
import scala.jdk.javaapi.CollectionConverters;
import scala.runtime.AbstractFunction1;
import scala.runtime.AbstractFunction2;
import scala.runtime.BoxedUnit;

/**
 * Emoticana's SQL sandbox, a Spark SQL extension ({@code spark.sql.extensions}) in two layers.
 *
 * <p>As parsed, before Spark analyses anything: script variables are substituted alone
 * ({@link SessionVariables}) and the statement must pass the allow-list ({@link StatementPolicy}):
 * statements, data sources, Hive formats, options, properties, settings and plain paths.
 *
 * <p>As analysed, before anything runs, this check rule: every location the plan reads lies in
 * the allowed roots and every write in the warehouse (symbolic links and {@code ..} resolved),
 * stored tables and views included, and no expression calls Java ({@code reflect}) or parses XML
 * ({@code xpath}, {@code from_xml}); with passwords on, only a table's or view's owner or an
 * administrator changes it, and only an administrator switches the server-wide model ({@link Owners}). Check rules see the analysed plan of every statement in
 * every session (the Thrift server's sessions share the root session's extensions), and again
 * the plans a command builds and runs inside (the insert of a {@code CREATE TABLE AS SELECT},
 * the statement of {@code EXECUTE IMMEDIATE}).
 */
public final class SqlSandbox extends AbstractFunction1<SparkSessionExtensions, BoxedUnit> {

    /** Folders SQL may read as table or view locations (audio roots and the warehouse), comma-separated. */
    public static final String KEY_READ_ROOTS = "spark.emoticana.sql.readRoots";
    /** Folders SQL may write (the warehouse), comma-separated. */
    public static final String KEY_WRITE_ROOTS = "spark.emoticana.sql.writeRoots";

    /** The names Spark gives tables and databases in the metastore (SessionCatalog's rule). */
    private static final java.util.regex.Pattern NAME = java.util.regex.Pattern.compile("[A-Za-z0-9_]+");

    /** Settings no session may change, with the prefixes and endings below. */
    private static final Set<String> FIXED_KEYS = Set.of(
            "spark.sql.runsqlonfiles",
            SessionVariables.KEY_SUBSTITUTE,
            "spark.sql.sources.usev1sourcelist",
            // A class name: Spark loads and constructs it while analysing CREATE TABLE without USING.
            "spark.sql.sources.default",
            "spark.sql.legacy.setcommandrejectssparkcoreconfs",
            // Resource bounds shared by every session (conf/spark-defaults.conf).
            "spark.sql.sources.binaryfile.maxlength",
            "spark.sql.thriftserver.scheduler.pool");
    private static final String[] FIXED_PREFIXES = {
        "spark.emoticana.", "spark.sql.catalog.", "spark.sql.extensions", "spark.sql.warehouse.", "spark.sql.hive.",
        // What SET and error messages hide (the metastore's connection URL among them).
        "spark.sql.redaction.",
        "spark.hadoop.", "fs.", "hadoop.", "mapreduce.", "mapred.", "datanucleus.", "javax.jdo.",
        // Hive settings Spark acts on: scratch and staging folders, the metastore, resources, hooks.
        // Not hive.* as a whole: JDBC clients send some when the session opens (beeline: hive.server2.thrift.resultset.*).
        "hive.exec.", "hive.metastore.", "hive.security.", "hive.downloaded.resources.", "hive.aux.", "hive.reloadable.aux.",
    };
    /** Settings that name a class, a program or a place on disk. */
    private static final String[] FIXED_ENDINGS = {"class", "classes", "python", "dir", "path", "location", "jars", "url"};
    /** Hive settings that only tune dynamic-partition inserts. */
    private static final String[] OPEN_HIVE_KEYS = {"hive.exec.dynamic.partition", "hive.exec.max.dynamic.partitions"};
    /** Option names that carry a path or URL, compared in lower case by their ending. */
    private static final String[] PATH_OPTION_ENDINGS = {"path", "paths", "location", "url", "uri", "file"};

    @Override
    public BoxedUnit apply(SparkSessionExtensions extensions) {
        extensions.injectParser(new AbstractFunction2<SparkSession, ParserInterface, ParserInterface>() {
            @Override
            public ParserInterface apply(SparkSession session, ParserInterface delegate) {
                return new SessionVariables(session, delegate);
            }
        });
        extensions.injectCheckRule(new AbstractFunction1<SparkSession, scala.Function1<LogicalPlan, BoxedUnit>>() {
            @Override
            public scala.Function1<LogicalPlan, BoxedUnit> apply(SparkSession session) {
                return new Check(session);
            }
        });
        return BoxedUnit.UNIT;
    }

    /**
     * Why a session may not change the setting, or null when it may: script variables, the
     * {@code spark.sql.*} settings that {@link #fixedReason} leaves open, the Hive settings that tune
     * dynamic-partition inserts and the result-set settings JDBC clients send. Nothing else.
     */
    static String settingRefusal(String key) {
        String lower = key.trim().toLowerCase(Locale.ROOT);
        String fixed = fixedReason(lower);
        if (fixed != null || lower.startsWith("hivevar:") || !lower.contains(".")) {
            return fixed;
        }
        if (lower.startsWith("spark.sql.") || lower.startsWith("hive.server2.thrift.resultset.")) {
            return null;
        }
        for (String open : OPEN_HIVE_KEYS) {
            if (lower.startsWith(open)) {
                return null;
            }
        }
        return "a session may change spark.sql.* settings and script variables only; the rest is fixed by the server";
    }

    /** Settings a session may not change even among the open ones, with the reason; null otherwise. */
    static String fixedReason(String key) {
        String lower = key.trim().toLowerCase(Locale.ROOT);
        if (lower.startsWith("hivevar:")) {
            return null;  // script variables (beeline --hivevar audio_dir=...), only ever substituted into SQL
        }
        if (!lower.contains(".")) {
            // Every Spark, Hive and Hadoop setting has a dotted name; a plain name is a variable
            // (HiveServer2 stores a session's --hivevar audio_dir as "audio_dir").
            return null;
        }
        if (lower.equals("spark.sql.runsqlonfiles")) {
            return "it would reopen reading files through SQL";
        }
        if (FIXED_KEYS.contains(lower)) {
            return "it is fixed by the server";
        }
        for (String open : OPEN_HIVE_KEYS) {
            if (lower.startsWith(open)) {
                return null;
            }
        }
        for (String prefix : FIXED_PREFIXES) {
            if (lower.startsWith(prefix)) {
                return "settings under " + prefix + "* are fixed by the server";
            }
        }
        for (String ending : FIXED_ENDINGS) {
            if (lower.endsWith(ending)) {
                return "settings that name a class, a program or a place on disk are fixed by the server";
            }
        }
        return null;
    }

    /**
     * A JDBC client can pass settings when it opens a session (URL {@code ?key=value}, PyHive
     * {@code configuration}); they reach the session without a SET statement, so every statement,
     * as parsed and again as analysed, compares the settings a session may not change with the
     * server's own.
     */
    static void checkSessionSettings(SparkSession session) {
        SQLConf conf = session.sessionState().conf();
        SparkConf server = session.sharedState().conf();
        for (Map.Entry<String, String> entry : CollectionConverters.asJava(conf.getAllConfs()).entrySet()) {
            String key = entry.getKey();
            // Spark's own settings (not spark.sql.*) are read from the server's configuration, not the
            // session's, and a session holds them with values Spark settled at start-up: only the
            // fixed ones are compared. Every other key reaches the session's Hadoop configuration.
            String lower = key.toLowerCase(Locale.ROOT);
            String reason = lower.startsWith("spark.") && !lower.startsWith("spark.sql.")
                    ? fixedReason(key) : settingRefusal(key);
            String refused = sessionValueRefusal(session, server, key, entry.getValue(), reason);
            if (refused != null) {
                throw refusal(refused);
            }
        }
    }

    /**
     * A session's value of a setting it may not change ({@code reason} non-null) is refused unless it
     * is the server's own value; null when it passes.
     */
    private static String sessionValueRefusal(SparkSession session, SparkConf server, String key, String value,
            String reason) {
        if (reason == null || Objects.equals(value, serverValue(session, server, key))) {
            return null;
        }
        return "setting " + key + "=" + value + " in this session is refused: " + reason + " (SQL sandbox)";
    }

    /**
     * Why the settings a client sends as it opens a session are refused, or null when they pass.
     *
     * <p>HiveServer2 applies them while it opens the session, before any statement that the checks
     * above could refuse: {@code set:system:K} sets a JVM system property for the whole server,
     * {@code set:metaconf:K} the metastore client's settings, and a metastore or Derby setting in the
     * session's Hive configuration is acted on when the session closes (a connection to the named
     * metastore, a Derby database created at the named path). So they pass this allow-list before
     * the session exists: the database to start in ({@code use:database}), script variables
     * ({@code set:hivevar:NAME}, JDBC {@code #NAME=VALUE}, beeline {@code --hivevar}) and the
     * settings a {@code SET} may change ({@code set:hiveconf:K}, {@code set:K}, a plain {@code K};
     * JDBC {@code ?K=VALUE}, beeline {@code --hiveconf}), or any setting at the server's own value.
     * HiveServer2 reads these prefixes case-sensitively, so any other key with a colon is refused.
     */
    public static String openingRefusal(SparkSession root, Map<String, String> configuration) {
        if (configuration == null) {
            return null;
        }
        for (Map.Entry<String, String> entry : configuration.entrySet()) {
            String key = entry.getKey();
            String value = entry.getValue();
            if (key.contains("${") || (value != null && value.contains("${"))) {
                // HiveServer2 fills in ${env:..}, ${system:..} and ${hiveconf:..} of an opening value
                // (a script variable's too) before the session exists: any user could read the
                // server's environment and settings back from a variable of their own.
                return "opening a session with " + key + " is refused: a value sent as a session opens may "
                        + "not contain ${ (SQL sandbox)";
            }
            if (key.equals("use:database") || key.startsWith("set:hivevar:")) {
                continue;
            }
            String setting = key.startsWith("set:hiveconf:") ? key.substring("set:hiveconf:".length())
                    : key.startsWith("set:") ? key.substring("set:".length()) : key;
            if (setting.contains(":")) {
                return "opening a session with " + key + " is refused: a session may be opened with "
                        + "use:database, script variables (set:hivevar:NAME) and settings (set:hiveconf:KEY) "
                        + "only (SQL sandbox)";
            }
            String refused = sessionValueRefusal(root, root.sharedState().conf(), setting, entry.getValue(),
                    settingRefusal(setting));
            if (refused != null) {
                return refused;
            }
        }
        return null;
    }

    /**
     * The value the server itself gives a setting: a Spark setting, a Hadoop/Hive setting given as
     * {@code spark.hadoop.KEY}, or a JVM system property (HiveServer2 copies the Hive settings it
     * was started with, such as the password provider's class, into every session).
     */
    private static String serverValue(SparkSession session, SparkConf server, String key) {
        if (server.contains(key)) {
            return server.get(key);
        }
        if (server.contains("spark.hadoop." + key)) {
            return server.get("spark.hadoop." + key);
        }
        String property = System.getProperty(key);
        if (property != null) {
            return property;
        }
        return session.sparkContext().hadoopConfiguration().get(key);
    }

    /**
     * Throws the AnalysisException that refuses a statement (Spark reports it to the client like
     * its own analysis errors). Declared to return, so that callers can write {@code throw refusal(...)}.
     */
    public static RuntimeException refusal(String message) {
        throw SqlSandbox.<RuntimeException>unchecked(new AnalysisException("emoticana: " + message, Option.empty(),
                Option.empty(), Option.empty(), Option.empty(), scala.collection.immutable.Map$.MODULE$.empty(), new QueryContext[0]));
    }

    /** AnalysisException is a checked exception to Java, whereas Scala check rules throw it freely. */
    @SuppressWarnings("unchecked")
    private static <T extends Throwable> T unchecked(Throwable exception) throws T {
        throw (T) exception;
    }

    /** The check rule of one session. */
    static final class Check extends AbstractFunction1<LogicalPlan, BoxedUnit> {
        private final SparkSession session;
        private final AllowedRoots readRoots;
        private final AllowedRoots writeRoots;
        private final URI defaultFs;
        private final Owners owners;

        Check(SparkSession session) {
            this.session = session;
            this.owners = new Owners(session);
            SparkConf conf = session.sparkContext().getConf();
            this.defaultFs = FileSystem.getDefaultUri(session.sparkContext().hadoopConfiguration());
            this.readRoots = AllowedRoots.parse(required(conf, KEY_READ_ROOTS), defaultFs);
            this.writeRoots = AllowedRoots.parse(required(conf, KEY_WRITE_ROOTS), defaultFs);
        }

        private static String required(SparkConf conf, String key) {
            if (!conf.contains(key)) {
                throw new IllegalStateException("emoticana: the SQL sandbox needs the Spark setting " + key
                        + " (set by the server from EMOTICANA_AUDIO_ROOTS and the warehouse)");
            }
            return conf.get(key);
        }

        @Override
        public BoxedUnit apply(LogicalPlan plan) {
            checkSessionSettings(session);
            new Walk().plan(plan);
            return BoxedUnit.UNIT;
        }

        private void readable(String what, String path) {
            readable(what, new org.apache.hadoop.fs.Path(path));
        }

        private void readable(String what, URI location) {
            readable(what, new org.apache.hadoop.fs.Path(location));
        }

        private void readable(String what, org.apache.hadoop.fs.Path path) {
            check(what, path, readRoots, "is outside the allowed roots (" + readRoots.display()
                    + "); add its folder to EMOTICANA_AUDIO_ROOTS");
        }

        private void writable(String what, String path) {
            writable(what, new org.apache.hadoop.fs.Path(path));
        }

        private void writable(String what, URI location) {
            writable(what, new org.apache.hadoop.fs.Path(location));
        }

        private void writable(String what, org.apache.hadoop.fs.Path path) {
            check(what, path, writeRoots, "is outside the warehouse (" + writeRoots.display()
                    + "), the only place SQL may write");
        }

        /**
         * A folder outside the warehouse that a statement would have Hive make when it is missing
         * (a Hive-format table's LOCATION, a partition's folder): SQL makes no folders there, so it
         * must exist already.
         */
        private void existingOutsideWarehouse(String what, org.apache.hadoop.fs.Path path) {
            boolean exists;
            try {
                if (writeRoots.contains(path, defaultFs)) {
                    return;
                }
                exists = path.getFileSystem(session.sparkContext().hadoopConfiguration()).exists(path);
            } catch (IllegalArgumentException | java.io.IOException e) {
                throw refusal(what + " refused: " + e.getMessage() + " (SQL sandbox)");
            }
            if (!exists) {
                throw refusal(what + " '" + path + "' is refused: there is no such folder, and SQL makes "
                        + "no folders outside the warehouse; make it first (SQL sandbox)");
            }
        }

        private void check(String what, org.apache.hadoop.fs.Path path, AllowedRoots roots, String outside) {
            boolean inside;
            try {
                inside = roots.contains(path, defaultFs);
            } catch (IllegalArgumentException e) {
                throw refusal(what + " refused: " + e.getMessage() + " (SQL sandbox)");
            }
            if (!inside) {
                throw refusal(what + " '" + path + "' " + outside);
            }
        }

        /** Stored tables too: one made before the sandbox, or with it off, is read only through an allowed source. */
        private void provider(String provider) {
            StatementPolicy.source(provider);
        }

        /** The analysed plan's checks, on the sandbox's one traversal ({@link PlanWalk}). */
        private final class Walk extends PlanWalk {

            @Override
            void visit(Expression expression) {
                if (expression instanceof CallMethodViaReflection) {
                    throw refusal("reflect/java_method is refused: it calls Java methods inside the server (SQL sandbox)");
                }
                if (expression instanceof XPathExtract || expression instanceof XmlToStructs
                        || expression instanceof SchemaOfXml) {
                    throw refusal("xpath, from_xml and schema_of_xml are refused: an XML document's external "
                            + "entities and DTDs would make the server open files and URLs (SQL sandbox)");
                }
                owners.checkFunction(expression);
            }

            /** The locations commands name as strings. */
            @Override
            void visit(LogicalPlan node) {
                owners.checkChange(node);
                // Statements refused whatever their arguments are refused as parsed (StatementPolicy);
                // what is left are the locations that analysis resolves.
                if (node instanceof CreateTempViewUsing) {
                    provider(((CreateTempViewUsing) node).provider());
                } else if (node instanceof AlterTableSetLocationCommand) {
                    AlterTableSetLocationCommand move = (AlterTableSetLocationCommand) node;
                    managedLocation(move.tableName(), move.partitionSpec().isDefined()
                            ? "ALTER TABLE ... PARTITION ... SET LOCATION" : "ALTER TABLE ... SET LOCATION");
                    readable("table location", move.location());
                } else if (node instanceof AlterTableAddPartitionCommand) {
                    AlterTableAddPartitionCommand add = (AlterTableAddPartitionCommand) node;
                    for (Tuple2<scala.collection.immutable.Map<String, String>, Option<String>> spec
                            : CollectionConverters.asJava(add.partitionSpecsAndLocs())) {
                        if (spec._2().isDefined()) {
                            managedLocation(add.tableName(), "ALTER TABLE ... ADD PARTITION ... LOCATION");
                            readable("partition location", spec._2().get());
                            existingOutsideWarehouse("partition location", new org.apache.hadoop.fs.Path(spec._2().get()));
                        } else {
                            partitionFolder(add.tableName(), spec._1());
                        }
                    }
                } else if (node instanceof CreateTableCommand) {
                    Option<URI> location = ((CreateTableCommand) node).table().storage().locationUri();
                    if (location.isDefined()) {
                        existingOutsideWarehouse("table location", new org.apache.hadoop.fs.Path(location.get()));
                    }
                } else if (node instanceof CreateTableLikeCommand) {
                    Option<URI> location = ((CreateTableLikeCommand) node).fileFormat().locationUri();
                    if (location.isDefined()) {
                        existingOutsideWarehouse("table location", new org.apache.hadoop.fs.Path(location.get()));
                    }
                } else if (node instanceof CreateNamespace) {
                    databaseLocation(((CreateNamespace) node).properties());
                } else if (node instanceof SetNamespaceProperties) {
                    databaseLocation(((SetNamespaceProperties) node).properties());
                } else if (node instanceof SetNamespaceLocation) {
                    writable("database location", ((SetNamespaceLocation) node).location());
                } else if (node instanceof CreateDatabaseCommand) {
                    Option<String> path = ((CreateDatabaseCommand) node).path();
                    if (path.isDefined()) {
                        writable("database location", path.get());
                    }
                } else if (node instanceof AlterDatabaseSetLocationCommand) {
                    writable("database location", ((AlterDatabaseSetLocationCommand) node).location());
                } else if (node instanceof InsertIntoHadoopFsRelationCommand) {
                    InsertIntoHadoopFsRelationCommand insert = (InsertIntoHadoopFsRelationCommand) node;
                    writable("writing to", insert.outputPath());
                    if (insert.catalogTable().isDefined()) {
                        partitionWrites(insert.catalogTable().get());
                    }
                } else if (node instanceof InsertIntoHiveTable) {
                    tableWrite(((InsertIntoHiveTable) node).table());
                    partitionWrites(((InsertIntoHiveTable) node).table());
                } else if (node instanceof CreateDataSourceTableAsSelectCommand) {
                    tableName(((CreateDataSourceTableAsSelectCommand) node).table().identifier());
                    tableWrite(((CreateDataSourceTableAsSelectCommand) node).table());
                } else if (node instanceof CreateHiveTableAsSelectCommand) {
                    tableName(((CreateHiveTableAsSelectCommand) node).tableDesc().identifier());
                    tableWrite(((CreateHiveTableAsSelectCommand) node).tableDesc());
                }
            }

            /**
             * A managed table's folders are Spark's to delete (DROP TABLE, TRUNCATE, DROP PARTITION,
             * INSERT OVERWRITE), so they stay in the warehouse, where SQL never names a folder: a managed
             * table or partition moved onto the audio roots would delete the audio there.
             */
            void managedLocation(TableIdentifier name, String statement) {
                CatalogTable table;
                try {
                    table = session.sessionState().catalog().getTableMetadata(name);
                } catch (Exception e) {
                    return;  // no such table: Spark reports it
                }
                if (table.tableType().equals(CatalogTableType.MANAGED())) {
                    throw refusal(statement + " is refused for " + table.database() + "." + table.identifier().table()
                            + ": it is a managed table, whose folders Spark deletes with it, so they stay in the "
                            + "warehouse; to read a folder of the audio roots, create an external table over it "
                            + "(CREATE TABLE ... USING ... LOCATION '...') (SQL sandbox)");
                }
            }

            /** The folder a partition added without a location gets: its table's folder and spec. */
            void partitionFolder(TableIdentifier name, scala.collection.immutable.Map<String, String> spec) {
                CatalogTable table;
                try {
                    table = session.sessionState().catalog().getTableMetadata(name);
                } catch (Exception e) {
                    return;  // no such table: Spark reports it
                }
                if (table.storage().locationUri().isDefined()) {
                    existingOutsideWarehouse("partition folder",
                            org.apache.spark.sql.catalyst.catalog.ExternalCatalogUtils.generatePartitionPath(spec,
                                    table.partitionColumnNames(), new org.apache.hadoop.fs.Path(table.location())));
                }
            }

            /**
             * A partition can live outside its table's folder (one given a location before the rule
             * above), and an insert writes there.
             */
            void partitionWrites(CatalogTable table) {
                if (table.partitionColumnNames().isEmpty()) {
                    return;
                }
                for (org.apache.spark.sql.catalyst.catalog.CatalogTablePartition partition : CollectionConverters.asJava(
                        session.sessionState().catalog().listPartitions(table.identifier(), Option.empty()))) {
                    if (partition.storage().locationUri().isDefined()) {
                        writable("writing to a partition of " + table.identifier().unquotedString() + " at",
                                partition.storage().locationUri().get());
                    }
                }
            }

            /** Managed tables of a database are written under its location, so it must be in the warehouse. */
            void databaseLocation(scala.collection.immutable.Map<String, String> properties) {
                Option<String> location = properties.get("location");
                if (location.isDefined()) {
                    writable("database location", location.get());
                }
            }

            /**
             * A table's folder is named after it, and CREATE TABLE AS SELECT writes the rows before
             * Spark checks the name: '../t' or 't/p=1' put rows into another table's folder.
             */
            void tableName(TableIdentifier identifier) {
                String database = identifier.database().isDefined() ? identifier.database().get() : "default";
                for (String part : new String[] {database, identifier.table()}) {
                    if (!NAME.matcher(part).matches()) {
                        throw refusal("the name `" + part + "` is refused: the names of tables and databases "
                                + "are letters, digits and underscores (SQL sandbox)");
                    }
                }
            }

            void tableWrite(CatalogTable table) {
                Option<URI> location = table.storage().locationUri();
                if (location.isDefined()) {
                    writable("writing to table " + table.identifier().unquotedString() + " at", location.get());
                }
            }

            /** Locations and path options held anywhere in a node's fields: tables, storage, options, relations. */
            @Override
            @SuppressWarnings("unchecked")
            boolean visitValue(Object value, int depth) {
                if (value instanceof TreeNode) {
                    return true;  // a physical plan: what it reads is checked on its logical plan
                } else if (value instanceof CatalogTable) {
                    CatalogTable table = (CatalogTable) value;
                    if (table.provider().isDefined()) {
                        provider(table.provider().get());
                    }
                    storage("table " + table.identifier().unquotedString() + " location", table.storage());
                    // TBLPROPERTIES too: Hive's Avro SerDe reads its schema from 'avro.schema.url'.
                    options(CollectionConverters.asJava(table.properties()));
                } else if (value instanceof CatalogStorageFormat) {
                    storage("location", (CatalogStorageFormat) value);
                } else if (value instanceof HadoopFsRelation) {
                    value(((HadoopFsRelation) value).location(), depth + 1);
                    options(CollectionConverters.asJava(((HadoopFsRelation) value).options()));
                } else if (value instanceof FileIndex) {
                    for (org.apache.hadoop.fs.Path root : CollectionConverters.asJava(((FileIndex) value).rootPaths())) {
                        readable("file source", root);
                    }
                } else if (value instanceof FileTable) {
                    options(((FileTable) value).properties());
                } else if (value.getClass().getName().equals("org.apache.spark.sql.execution.datasources.jdbc.JDBCRelation")) {
                    throw refusal("data source 'jdbc' is refused: SQL reads only files inside the allowed roots (SQL sandbox)");
                } else if (value instanceof org.apache.hadoop.fs.Path) {
                    readable("path", (org.apache.hadoop.fs.Path) value);
                } else if (value instanceof scala.collection.Map) {
                    options(CollectionConverters.asJava((scala.collection.Map<Object, Object>) value));
                } else if (value instanceof Map) {
                    options((Map<Object, Object>) value);
                } else if (value.getClass().getName().startsWith("org.apache.spark.sql.catalyst.plans.logical.TableSpec")) {
                    fields(value, depth);
                } else {
                    return false;  // options, tuples and collections: the walk looks inside
                }
                return true;
            }

            void storage(String what, CatalogStorageFormat storage) {
                if (storage.locationUri().isDefined()) {
                    readable(what, storage.locationUri().get());
                }
                options(CollectionConverters.asJava(storage.properties()));
            }

            <K, V> void options(Map<K, V> options) {
                for (Map.Entry<K, V> entry : options.entrySet()) {
                    if (!(entry.getKey() instanceof String) || !(entry.getValue() instanceof String)) {
                        continue;
                    }
                    String key = ((String) entry.getKey()).toLowerCase(Locale.ROOT);
                    String text = (String) entry.getValue();
                    for (String ending : PATH_OPTION_ENDINGS) {
                        if (key.endsWith(ending)) {
                            for (String path : paths(key, text)) {
                                readable("option " + entry.getKey(), path);
                            }
                            break;
                        }
                    }
                }
            }
        }
    }

    /** The ``paths`` option is a JSON array of paths (DataFrameReader.load); every other one is a single path. */
    static String[] paths(String key, String value) {
        if (key.equals("paths") && value.trim().startsWith("[")) {
            try {
                return new ObjectMapper().readValue(value, String[].class);
            } catch (java.io.IOException e) {
                throw refusal("option paths '" + value + "' is not a JSON array of paths");
            }
        }
        return new String[] {value};
    }
}
